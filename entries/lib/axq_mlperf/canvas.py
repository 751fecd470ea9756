"""Compose detection canvases from scikit-learn's 8x8 digits, with their boxes known exactly.

A canvas (64 x 64 by default, black) holds one to five digits, each scaled with PIL's
bilinear resize by a seeded factor (2x to 3.5x: 16 to 28 pixels square) and placed at a
seeded position. A digit's box is the tight box of its ink after scaling (the pixels that
are not 0), so it is exact; boxes (with a one-pixel gap) never intersect, and each lies
wholly inside the canvas. A digit whose position cannot be found in a few tries is left
out, so a crowded canvas may hold fewer than it drew (never none). The same digits, count
and seed give the same canvases and boxes.
"""

from __future__ import annotations

from typing import Any

CANVAS_SIZE = 64
MAX_DIGITS = 5
SCALES = (2.0, 3.5)
PLACEMENT_TRIES = 30
GAP = 1
PIXEL_MAX = 16


def compose(digits: Any, labels: Any, count: int, seed: int,
            size: int = CANVAS_SIZE) -> tuple[Any, list[Any]]:
    """Return `count` canvases (uint8 count x size x size) and per canvas its n x 5 float32 boxes.

    `digits` are scikit-learn's images (uint8 N x 8 x 8, values 0..16) and `labels` their
    digits; a box row is x, y, w, h (COCO, pixels) and category_id = label + 1.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    canvases = np.zeros((count, size, size), dtype=np.uint8)
    boxes = [place_digits(canvases[i], digits, labels, rng) for i in range(count)]
    return canvases, boxes


def place_digits(canvas: Any, digits: Any, labels: Any, rng: Any) -> Any:
    """Paste one to five seeded digits onto the canvas; return their boxes (n x 5 float32)."""
    import numpy as np

    placed: list[tuple[int, int, int, int, int]] = []
    for index in rng.integers(0, len(digits), size=rng.integers(1, MAX_DIGITS + 1)):
        ink = scaled_ink(digits[index], rng.uniform(*SCALES))
        spot = free_spot(ink.shape, canvas.shape[0], placed, rng)
        if spot is not None:
            y, x = spot
            window = canvas[y:y + ink.shape[0], x:x + ink.shape[1]]
            np.maximum(window, ink, out=window)
            placed.append((x, y, ink.shape[1], ink.shape[0], int(labels[index]) + 1))
    return np.array(placed, dtype=np.float32).reshape(-1, 5)


def scaled_ink(digit: Any, scale: float) -> Any:
    """Return the digit scaled bilinearly to 0..255 levels, cropped to the tight box of its ink."""
    import numpy as np
    from PIL import Image

    side = round(float(digit.shape[0] * scale))
    levels = (digit.astype(np.float32) * (255.0 / PIXEL_MAX)).round().astype(np.uint8)
    image = np.asarray(Image.fromarray(levels).resize((side, side), Image.Resampling.BILINEAR))
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def free_spot(shape: tuple[int, int], size: int, placed: list[tuple[int, int, int, int, int]],
              rng: Any) -> tuple[int, int] | None:
    """Return a seeded (y, x) where a box of this shape fits clear of the placed boxes, or None."""
    height, width = shape
    ys = rng.integers(0, size - height + 1, PLACEMENT_TRIES).tolist()
    xs = rng.integers(0, size - width + 1, PLACEMENT_TRIES).tolist()
    for y, x in zip(ys, xs, strict=True):
        if not any(intersects((x, y, width, height), box) for box in placed):
            return y, x
    return None


def intersects(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Say whether two x, y, w, h boxes come closer than GAP pixels to each other."""
    return (a[0] < b[0] + b[2] + GAP and b[0] < a[0] + a[2] + GAP
            and a[1] < b[1] + b[3] + GAP and b[1] < a[1] + a[3] + GAP)
