"""Split scikit-learn's bundled digits into a seeded, stratified train and test set.

The images are stored as given (pixel values 0..16, uint8), one `.npy` pair per split;
`load_split` scales them to [0, 1] for the preprocessing recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import BuildContext

SPLITS = ("train", "test")
PIXEL_MAX = 16.0


def build(ctx: BuildContext) -> dict:
    """Load the digits, split them and save one images/labels pair per split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.int64)
    parts = train_test_split(
        images, labels,
        test_size=ctx.params["test_fraction"],
        random_state=ctx.params["split_seed"],
        stratify=labels,
    )
    x_train, x_test, y_train, y_test = parts
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        np.save(ctx.path / f"{split}_images.npy", x)
        np.save(ctx.path / f"{split}_labels.npy", y)
    ctx.log(f"digits: {len(y_train)} train, {len(y_test)} test images")
    return {"train_count": len(y_train), "test_count": len(y_test), "num_classes": 10}


def load_split(entry: Any, split: str) -> tuple[Any, Any]:
    """Return (images as float32 N x 8 x 8 in [0, 1], labels as int64 N) of a split."""
    import numpy as np

    from axq.errors import BuildError

    if split not in SPLITS:
        raise BuildError(f"digits has no split `{split}`; use split=train or split=test")
    images = np.load(entry.path / f"{split}_images.npy")
    labels = np.load(entry.path / f"{split}_labels.npy")
    return images.astype(np.float32) / PIXEL_MAX, labels


def expected_seconds(params: dict) -> float:
    """Return about how long loading scikit-learn's digits and splitting them takes."""
    return 2.0
