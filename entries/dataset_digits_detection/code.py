"""Make the embedded detection set: digits on canvases, written as a COCO folder (PNG images, instances json).

Each split's canvases are made of that split of scikit-learn's digits (the dependency's
seeded train/test split), so no digit of a scored canvas was seen in training
(axq_mlperf.canvas: 1-5 digits per 64 x 64 canvas, 16-28 pixels, boxes the tight box of
the ink). The entry's directory is a COCO folder (axq_mlperf.coco): `val2017/` holds the
test canvases, `train2017/` the training ones, `annotations/` their instances files with
category ids 1..10 for the digits 0..9. The same folder could be given as `coco_dir=`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import BuildContext

PIXEL_MAX = 16  # scikit-learn's digits' levels


def build(ctx: BuildContext) -> dict:
    """Compose both splits' canvases and write them with their annotations."""
    params, counts = ctx.params, {}
    for split, count, seed in (("train", params["canvas_train_count"], params["canvas_seed"]),
                               ("test", params["canvas_test_count"], params["canvas_seed"] + 1)):
        counts[split] = write_split(ctx, split, count, seed)
    ctx.log(f"digits_detection: {params['canvas_train_count']} train canvases ({counts['train']} digits), "
            f"{params['canvas_test_count']} test canvases ({counts['test']} digits)")
    return {"train_count": params["canvas_train_count"], "test_count": params["canvas_test_count"],
            "train_boxes": counts["train"], "test_boxes": counts["test"], "num_classes": 10}


def write_split(ctx: BuildContext, split: str, count: int, seed: int) -> int:
    """Write one split's canvases as PNGs and its COCO annotation file; return the number of boxes."""
    import numpy as np
    from PIL import Image

    from axq_mlperf import canvas, coco

    images, labels = ctx.deps["digits"].call("load_split", split)
    digits = np.rint(np.asarray(images) * PIXEL_MAX).astype(np.uint8)
    canvases, boxes = canvas.compose(digits, np.asarray(labels), count, seed)
    folder = coco.image_folder(ctx.path, split)
    folder.mkdir(parents=True, exist_ok=True)
    for number, pixels in enumerate(canvases, start=1):
        Image.fromarray(pixels, mode="L").save(folder / file_name(number))
    data = instances(canvases.shape[1:], boxes)
    coco.write(ctx.path, data, split)
    return len(data["annotations"])


def file_name(number: int) -> str:
    """Return the file name of canvas number (from 1), as COCO names its images."""
    return f"{number:012d}.png"


def instances(shape: tuple[int, ...], boxes: list[Any]) -> dict[str, Any]:
    """Return the COCO instances of the canvases: images (ids from 1), their boxes, the ten digit categories."""
    height, width = int(shape[0]), int(shape[1])
    images = [{"id": number, "file_name": file_name(number), "width": width, "height": height}
              for number in range(1, len(boxes) + 1)]
    found: list[dict[str, Any]] = []
    for number, rows in enumerate(boxes, start=1):
        for x, y, w, h, category in rows.tolist():
            found.append({"id": len(found) + 1, "image_id": number, "bbox": [x, y, w, h],
                          "category_id": int(category), "area": w * h, "iscrowd": 0})
    return {"images": images, "annotations": found,
            "categories": [{"id": digit + 1, "name": str(digit)} for digit in range(10)]}


def coco_folder(entry: Any) -> Path:
    """Return the COCO folder the entry is: its own directory."""
    return Path(entry.path)


def expected_seconds(params: dict) -> float:
    """Return about how long composing and writing the canvases takes (about 0.3 ms each)."""
    return 2.0 + 0.0003 * (params["canvas_train_count"] + params["canvas_test_count"])
