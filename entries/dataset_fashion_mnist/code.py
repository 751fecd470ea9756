"""Read Fashion-MNIST from its official gzipped IDX files into `.npy` arrays.

Where the files come from, first found wins: the `fashion_mnist_dir` parameter, the
Debian package `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/), a download
from the official location (only where a network answers). The official 10,000 t10k
images are the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import BuildContext

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DOWNLOAD_TIMEOUT_S = 5.0
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
COUNTS = {"train": 60000, "test": 10000}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
HOW_TO_PROVIDE = (
    "install it with `apt install dataset-fashion-mnist` or pass "
    "fashion_mnist_dir=DIR, a folder holding the four official *-ubyte.gz files"
)


def build(ctx: BuildContext) -> dict:
    """Find the IDX files, parse and check them, and save one `.npy` pair per split."""
    import numpy as np

    folder = find_dir(ctx.params["fashion_mnist_dir"], ctx.path / "download", ctx.log)
    for split, (images_name, labels_name) in FILES.items():
        images = read_idx(folder / images_name, IMAGES_MAGIC)
        labels = read_idx(folder / labels_name, LABELS_MAGIC)
        check_split(split, images, labels)
        np.save(ctx.path / f"{split}_images.npy", images)
        np.save(ctx.path / f"{split}_labels.npy", labels.astype(np.int64))
    ctx.log(f"fashion_mnist: read from {folder}")
    # A download lands inside this (still temporary) entry: record it relative to the entry.
    source = "download" if folder == ctx.path / "download" else str(folder)
    return {"source_dir": source, "train_count": COUNTS["train"],
            "test_count": COUNTS["test"], "num_classes": 10}


def load_split(entry: Any, split: str) -> tuple[Any, Any]:
    """Return (images as float32 N x 28 x 28 in [0, 1], labels as int64 N) of a split."""
    import numpy as np

    from axq.errors import BuildError

    if split not in FILES:
        raise BuildError(f"fashion_mnist has no split `{split}`; use split=train or split=test")
    images = np.load(entry.path / f"{split}_images.npy")
    labels = np.load(entry.path / f"{split}_labels.npy")
    return images.astype(np.float32) / 255.0, labels


def find_dir(given: str | None, download_to: Path, log: Any) -> Path:
    """Return the folder holding the four IDX files, downloading them as a last resort."""
    from axq.errors import BuildError

    if given is not None:
        folder = Path(given).expanduser()
        if not has_all_files(folder):
            raise BuildError(f"fashion_mnist_dir={given} lacks {missing_files(folder)[0]}; "
                             f"it must hold the four official *-ubyte.gz files")
        return folder
    if has_all_files(SYSTEM_DIR):
        return SYSTEM_DIR
    if download(download_to, log):
        return download_to
    raise BuildError(f"Fashion-MNIST not found in {SYSTEM_DIR} and no network to download "
                     f"it: {HOW_TO_PROVIDE}")


def missing_files(folder: Path) -> list[str]:
    """Return the names of the official files missing from folder."""
    return [name for pair in FILES.values() for name in pair if not (folder / name).is_file()]


def has_all_files(folder: Path) -> bool:
    """Say whether folder holds all four official files."""
    return folder.is_dir() and not missing_files(folder)


def download(folder: Path, log: Any) -> bool:
    """Fetch the four files from the official location; return False if offline."""
    import urllib.request

    folder.mkdir(parents=True, exist_ok=True)
    for name in (name for pair in FILES.values() for name in pair):
        try:
            with urllib.request.urlopen(URL + name, timeout=DOWNLOAD_TIMEOUT_S) as response:
                (folder / name).write_bytes(response.read())
        except OSError as error:
            log(f"fashion_mnist: download of {name} failed: {error}")
            return False
        log(f"fashion_mnist: downloaded {name}")
    return True


def read_idx(path: Path, magic: int) -> Any:
    """Parse a gzipped IDX file of unsigned bytes into an array, checking its header."""
    import gzip

    import numpy as np

    from axq.errors import BuildError

    try:
        with gzip.open(path) as stream:
            data = stream.read()
    except (OSError, EOFError) as error:
        raise BuildError(f"{path} is not a readable gzip file: {error}") from error
    dims = parse_header(data, path, magic)
    offset = 4 + 4 * len(dims)
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise BuildError(f"{path} holds {len(data) - offset} data bytes, its header "
                         f"{list(dims)} says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def parse_header(data: bytes, path: Path, magic: int) -> tuple[int, ...]:
    """Check an IDX file's big-endian magic number and return its dimensions.

    The magic number is 0x0000 0x08 (unsigned bytes) then the number of dimensions:
    2051 for images (3 dimensions), 2049 for labels (1).
    """
    import struct

    from axq.errors import BuildError

    found = struct.unpack(">i", data[:4])[0] if len(data) >= 4 else None
    if found != magic:
        raise BuildError(f"{path} has IDX magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim:
        raise BuildError(f"{path} is cut short inside its IDX header")
    return struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])


def check_split(split: str, images: Any, labels: Any) -> None:
    """Check a split's shapes, count and label range against the official data set."""
    from axq.errors import BuildError

    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise BuildError(f"fashion_mnist {split}: images {images.shape}, labels "
                         f"{labels.shape}; expected N x 28 x 28 and N")
    if len(images) != COUNTS[split] or len(labels) != COUNTS[split]:
        raise BuildError(f"fashion_mnist {split}: {len(images)} images, {len(labels)} "
                         f"labels; the official set has {COUNTS[split]}")
    if labels.max() > 9:
        raise BuildError(f"fashion_mnist {split}: label {labels.max()} is outside 0..9")


def expected_seconds(params: dict) -> float:
    """Return about how long reading the four IDX files takes (a download, where one is needed, is not counted)."""
    return 3.0
