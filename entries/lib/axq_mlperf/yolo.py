"""Ultralytics YOLO11 (`model_name=yolo`, MLPerf v6.1's yolo-99 / yolo-95): the only code that imports ultralytics.

ultralytics is AGPL-3.0 and an optional extra (`pip install axq[yolo]`); a run that needs it
and finds it missing says so in one line. The model is ultralytics' own `DetectionModel`
built from its bundled `yolo11{n,s,m,l,x}.yaml` (80 COCO classes; nothing is downloaded),
with weights from `weights_path` (an ultralytics checkpoint such as `yolo11l.pt`, or a plain
state_dict of that model), else random ones for performance runs only.

As for the torchvision detectors (axq_mlperf.detectors), the graph every runtime runs stops
before the data-dependent part: `Graph` returns the Detect head's decoded N x (4 + 80) x A
(boxes as centre x, y, width, height in input pixels, then class scores), and `Postprocess`
runs ultralytics' own `non_max_suppression` with what the MLPerf reference harness's
`YOLO.predict(conf=0.001)` uses (IoU 0.7, 300 boxes per image, one class per box), then
maps the 80 classes to COCO's category ids as the reference does.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from axq.errors import BuildError

SIZES = ("n", "s", "m", "l", "x")
CONF_THRESHOLD = 0.001  # the reference harness's predict(conf=0.001)
IOU_THRESHOLD = 0.7  # ultralytics' predict default (cfg/default.yaml `iou`)
MAX_BOXES = 300  # ultralytics' predict default (`max_det`)
UNUSED_COCO_IDS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})  # ids COCO 2017 never annotates
COCO_IDS = [i for i in range(1, 91) if i not in UNUSED_COCO_IDS]  # class k of the 80 -> COCO category id


def ultralytics() -> Any:
    """Return the ultralytics package, quiet and offline, or raise BuildError saying how to install it."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        import ultralytics as package
    except ImportError:
        raise BuildError("model_name=yolo needs ultralytics (AGPL-3.0), an optional extra: "
                         "pip install 'axq[yolo]'") from None
    return package


def new_network(name: str) -> Any:
    """Return ultralytics' DetectionModel `name` (yolo11l, ...) from its bundled yaml, randomly initialised."""
    ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(f"{name}.yaml", nc=len(COCO_IDS), verbose=False)


def read_weights(path: Path) -> dict:
    """Return the state_dict in an ultralytics checkpoint (its `ema` or `model`), or a plain state_dict file.

    An ultralytics checkpoint pickles the model object itself, so it is unpickled in full:
    only open a weights file you trust, as with `YOLO(path)`.
    """
    import torch

    ultralytics()
    try:
        found = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many kinds for a bad file
        from axq_mlperf.training import first_line

        raise BuildError(f"can't read weights at {path}: {first_line(error)}") from error
    if isinstance(found, dict) and isinstance(found.get("ema") or found.get("model"), torch.nn.Module):
        return (found.get("ema") or found["model"]).float().state_dict()
    if isinstance(found, dict):
        return found
    raise BuildError(f"weights at {path} are a {type(found).__name__}, not an ultralytics checkpoint or state_dict")


@functools.cache
def graph_class() -> type:
    """Return the graph's nn.Module class (made on first use: torch is imported late)."""
    import torch
    from torch import nn

    class Graph(nn.Module):
        """A YOLO DetectionModel up to its Detect head's decoded boxes and scores: what every runtime runs."""

        network: Any

        def __init__(self, network: nn.Module, size: int) -> None:
            super().__init__()
            self.network, self.size = network, size

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return N x A x (4 + 80): each anchor point's box (cx, cy, w, h in pixels), then its class scores."""
            found = self.network(x)
            return (found[0] if isinstance(found, (tuple, list)) else found).transpose(1, 2)

        def spec(self) -> tuple[dict[str, Any], None]:
            """Return the post-processing spec (no anchors: the head decodes its own boxes)."""
            return {"kind": "yolo", "image_size": self.size, "score_thresh": CONF_THRESHOLD,
                    "nms_thresh": IOU_THRESHOLD, "detections_per_img": MAX_BOXES}, None

    return Graph


def detections(spec: dict[str, Any], output: Any) -> list[dict[str, Any]]:
    """Return each image's detections (pixel boxes, scores, COCO category ids) from N x A x (4 + 80) outputs."""
    import torch

    ultralytics()
    from ultralytics.utils.nms import non_max_suppression

    categories = torch.tensor(COCO_IDS)
    found = non_max_suppression(output.transpose(1, 2), conf_thres=spec["score_thresh"],
                                iou_thres=spec["nms_thresh"], max_det=spec["detections_per_img"])
    return [{"boxes": image[:, :4], "scores": image[:, 4], "labels": categories[image[:, 5].long()]}
            for image in found]
