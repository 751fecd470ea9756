"""Make ImageNet-like inputs offline, and name the built-in recipes' directory.

`make_imagenet_dir` and `make_resnet50_weights` (`make_classifier_weights` for any
torchvision classifier) stand in for a user's ImageNet folder and
downloaded weights, so the ImageNet recipes can be built through the kernel without either.
`ENTRIES` is the kernel's own path to the built-in recipes, so a test that imports a recipe's
code with `axq.entry.load_code(str(ENTRIES / NAME / "code.py"))` gets the very module the
kernel builds with (and a monkeypatch on it reaches the build).
"""

from __future__ import annotations

from pathlib import Path

from axq.locations import builtin_entries

ENTRIES = Path(builtin_entries())


def make_imagenet_dir(root: Path, n: int, small: bool = False) -> Path:
    """Write n ImageNet-style validation JPEGs of varied non-square sizes and a val_map.txt.

    `small` images (about 40 x 32) are quick to write and to decode: for tests that need
    many of them (preprocessing scales every image to the model's size anyway).
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = root / "imagenet_val"
    folder.mkdir(parents=True)
    lines = []
    for index in range(n):
        gray = (digits.images[index] * 255 / 16).astype(np.uint8)
        rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)
        size = (300 + 37 * (index % 5), 260 + 53 * (index % 3))  # width, height
        size = (size[0] // 8, size[1] // 8) if small else size
        name = f"ILSVRC2012_val_{index + 1:08d}.JPEG"
        Image.fromarray(rgb).resize(size).save(folder / name, "JPEG")
        lines.append(f"{name} {(digits.target[index] * 97 + index) % 1000}\n")
    (folder / "val_map.txt").write_text("".join(lines))
    return folder


def make_resnet50_weights(path: Path) -> Path:
    """Save a randomly initialised torchvision resnet50 state_dict to path."""
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path


def make_classifier_weights(model_name: str, path: Path) -> Path:
    """Save a randomly initialised torchvision classifier's state_dict (built as its recipe builds it) to path."""
    import torch

    from axq.entry import use_libraries

    use_libraries()
    import torchvision

    from axq_mlperf.classifiers import CONSTRUCTOR

    torch.manual_seed(0)
    model = torchvision.models.get_model(model_name, weights=None, **CONSTRUCTOR.get(model_name, {}))
    torch.save(model.state_dict(), path)
    return path
