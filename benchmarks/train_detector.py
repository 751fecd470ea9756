"""Train the small digit detector with its recipe's defaults; print the wall time and the COCO mAP.

The data are canvases of scikit-learn's digits (`axq_mlperf.canvas.compose`), split as the
digits dataset is (75/25, seed 0, stratified): training canvases from the train digits,
test canvases from the test digits. The model is `entries/model_small_detector`'s, trained
by its `train` with the recipe.json defaults (any of them changed with `--set name=value`),
on `--threads` torch threads. The mAP@[.5:.95] is pycocotools' COCOeval bbox stats[0] on
the test canvases; a randomly initialised detector is scored too (it should score about 0).
Run it alone: the wall time is a measurement (two torch threads slow down several times
when another process holds a core).

    .venv/bin/python benchmarks/train_detector.py [--train 2000] [--test 500] [--set epochs=1]

Measured on the two-core development machine (2,000 training canvases, 500 test canvases):
8 epochs (the default) mAP 0.844 (seed 1: 0.838), 12 epochs 0.869 in 67 s (5.6 s per
epoch), 1 epoch 0.314; 1,000 canvases, 8 epochs: 0.761; random weights 0.000.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "entries" / "model_small_detector"
sys.path[:0] = [str(REPO), str(REPO / "entries" / "lib")]


def canvases(split: str, count: int, seed: int) -> tuple[Any, list[Any]]:
    """Return `count` canvases (float32 N x 1 x H x W in [0, 1]) of a digits split, and their boxes."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from axq_mlperf.canvas import compose

    digits = load_digits()
    parts = train_test_split(digits.images.astype(np.uint8), digits.target, test_size=0.25,
                             random_state=0, stratify=digits.target)
    images, labels = (parts[0], parts[2]) if split == "train" else (parts[1], parts[3])
    pixels, boxes = compose(images, labels, count, seed)
    return (pixels[:, None] / np.float32(255)).astype(np.float32), boxes


def detect(model: Any, images: Any, batch_size: int = 256) -> Any:
    """Return the model's rows (N x K x 6, numpy) for the images, in batches, without gradients."""
    import numpy as np
    import torch

    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(images[i:i + batch_size])).numpy()
                               for i in range(0, len(images), batch_size)])


def coco_map(rows: Any, boxes: list[Any], size: int, min_score: float = 0.05) -> float:
    """Return pycocotools' mAP@[.5:.95] of the detector's rows against the true boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = COCO()
    truth.dataset = {
        "images": [{"id": i, "width": size, "height": size} for i in range(len(boxes))],
        "categories": [{"id": c} for c in range(1, 11)],
        "annotations": [{"id": len(boxes) * 10 * i + j + 1, "image_id": i, "bbox": [float(v) for v in box[:4]],
                         "area": float(box[2] * box[3]), "category_id": int(box[4]), "iscrowd": 0}
                        for i, image_boxes in enumerate(boxes) for j, box in enumerate(image_boxes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        found = [[i, r[1] * size, r[0] * size, (r[3] - r[1]) * size, (r[2] - r[0]) * size, r[4], r[5]]
                 for i, image_rows in enumerate(rows) for r in image_rows if r[4] >= min_score]
        if not found:
            return 0.0
        evaluation = COCOeval(truth, truth.loadRes(__import__("numpy").array(found)), "bbox")
        evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    return float(evaluation.stats[0])


def recipe_defaults(overrides: list[str]) -> dict:
    """Return the recipe's parameter defaults (its producer's first), with name=value overrides."""
    from axq.parameters import NO_DEFAULT
    from axq.recipe import read_recipe

    recipe = read_recipe(RECIPE)
    params = {name: p.default for name, p in recipe.parameters.items() if p.default is not NO_DEFAULT}
    params |= json.loads((RECIPE / "recipe.json").read_text())["producers"][0]["defaults"]
    for item in overrides:
        name, value = item.split("=", 1)
        params[name] = type(params[name])(value) if params.get(name) is not None else float(value)
    return params


def main() -> None:
    """Train with the defaults, time it, and print the mAP of the trained and a random detector."""
    import torch

    from axq.entry import load_code

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000, help="training canvases")
    parser.add_argument("--test", type=int, default=500, help="test canvases")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--set", action="append", default=[], help="override a recipe default: name=value")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    code, params = load_code(str(RECIPE / "code.py")), recipe_defaults(args.set)
    (train_x, train_boxes), (test_x, test_boxes) = canvases("train", args.train, 1), canvases("test", args.test, 2)
    torch.manual_seed(0)
    untrained = code.make_model().eval()
    start = time.perf_counter()
    model, loss = code.train(train_x, train_boxes, params)
    seconds = time.perf_counter() - start
    size = test_x.shape[-1]
    print(f"params {params}; {args.train} training canvases, {args.test} test canvases, {args.threads} threads")
    print(f"training: {seconds:.1f} s ({seconds / params['epochs']:.1f} s per epoch), final loss {loss:.4f}")
    print(f"mAP@[.5:.95] trained: {coco_map(detect(model, test_x), test_boxes, size):.4f}")
    print(f"mAP@[.5:.95] random weights: {coco_map(detect(untrained, test_x), test_boxes, size):.4f}")


if __name__ == "__main__":
    main()
