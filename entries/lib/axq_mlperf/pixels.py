"""Preprocessed images stored as uint8 pixels and normalised when they are read.

A preprocessed ImageNet image as float32 takes 588 KiB, so MLPerf's 50,000 validation
images would take 28 GiB; as the uint8 pixels the resize and crop produce anyway, 147 KiB
(7 GiB in all). The stored levels are exact (`scale` levels per unit: 255 for 8-bit
images, 16 for scikit-learn's digits), so normalising on read gives what normalising
before storing gave: `(pixels / scale - mean) / std`, per channel, computed in float64 and
rounded to float32 once.

`NormalisedImages` wraps the memory-mapped uint8 array: `len`, `shape`, `dtype` (float32)
and indexing as a numpy array (rows first), each read normalised; anything else (`mean()`,
`np.asarray`) normalises the whole array in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IMAGES, NORMALISATION = "images.npy", "normalisation.json"


def to_levels(images: Any, scale: int) -> Any:
    """Return [0, 1] images as uint8 levels (images * scale), refusing values that are not levels."""
    import numpy as np

    levels = np.rint(np.asarray(images, dtype=np.float64) * scale)
    if not np.allclose(levels, np.asarray(images, dtype=np.float64) * scale, atol=1e-4) or levels.max() > 255:
        raise ValueError(f"images are not multiples of 1/{scale} in [0, 1]: uint8 storage would change them")
    return levels.astype(np.uint8)


def write_normalisation(directory: Path, scale: int, mean: Any, std: Any) -> dict:
    """Write how stored levels become model inputs; return it."""
    found = {"scale": scale, "mean": [float(m) for m in as_list(mean)], "std": [float(s) for s in as_list(std)]}
    (Path(directory) / NORMALISATION).write_text(json.dumps(found), encoding="utf-8")
    return found


def as_list(value: Any) -> list:
    """Return a scalar or a sequence as a list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def open_images(directory: Path) -> NormalisedImages:
    """Return the normalised view of a directory's stored uint8 images (memory-mapped)."""
    import numpy as np

    found = json.loads((Path(directory) / NORMALISATION).read_text(encoding="utf-8"))
    raw = np.load(Path(directory) / IMAGES, mmap_mode="r")
    return NormalisedImages(raw, found["scale"], found["mean"], found["std"])


class NormalisedImages:
    """Stored uint8 images (N x C x H x W) that read as normalised float32."""

    def __init__(self, raw: Any, scale: int, mean: list[float], std: list[float]) -> None:
        import numpy as np

        self.raw, self.scale = raw, scale
        self.offset = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
        self.divisor = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def shape(self) -> tuple[int, ...]:
        """Return the images' shape, N x C x H x W."""
        return tuple(self.raw.shape)

    @property
    def dtype(self) -> Any:
        """Return float32: what reading gives."""
        import numpy as np

        return np.dtype(np.float32)

    def normalised(self, pixels: Any) -> Any:
        """Return stored pixels (... x C x H x W) as normalised float32."""
        import numpy as np

        return ((pixels / self.scale - self.offset) / self.divisor).astype(np.float32)

    def __getitem__(self, index: Any) -> Any:
        """Return the indexed images normalised (rows are chosen first, then the rest of the index)."""
        rows, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        if isinstance(rows, int):
            return self.normalised(self.raw[rows:rows + 1 or None])[0][rest]
        return self.normalised(self.raw[rows])[(slice(None), *rest)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        """Return every image normalised, in memory."""
        whole = self.normalised(self.raw[:])
        return whole if dtype is None else whole.astype(dtype)

    def __getattr__(self, name: str) -> Any:
        """Answer any other array attribute (mean, min, tolist...) from the whole normalised array."""
        if name.startswith("__") or name in ("raw", "scale", "offset", "divisor"):
            raise AttributeError(name)
        import numpy as np

        return getattr(np.asarray(self), name)
