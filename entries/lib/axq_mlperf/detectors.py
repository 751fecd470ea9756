"""Torchvision's COCO detectors: each one's constructor, square input size, and the wrapper the runtimes run.

The table is static, so that checking a `model_name` at resolve time costs no torchvision
import. Two models, each as torchvision builds it with `weights=None, weights_backbone=None`
(nothing is ever downloaded: weights come from `weights_path`, else they are random):

- `retinanet_coco`: `retinanet_resnet50_fpn`, 800 x 800 input;
- `ssd_mobilenet` (also `ssdlite`): `ssdlite320_mobilenet_v3_large`, 320 x 320 input.

Both predict torchvision's 91 COCO classes, whose indices are COCO's category ids (index 0
is the background, the gaps are torchvision's `N/A` entries), so a label is the category id
the scorer wants as it is.

`Detector` (made on first use: torch is imported late) wraps one: its forward takes float32
N x 3 x S x S in [0, 1] (the preprocessed data set stretches each image to S x S, so boxes
normalised by the image's own size stay valid) and returns N x MAX_DETECTIONS x 6 float32
rows [ymin, xmin, ymax, xmax, score, category_id] normalised by S, best first, padded with
score 0: the rows axq_mlperf.tasks.detection encodes. The model's own transform still
normalises the pixels; it is told S so that it resizes nothing.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

MAX_DETECTIONS = 100  # rows per image (MLPerf's RetinaNet keeps at most 100 per image too)
NUM_CLASSES = 91  # torchvision's COCO classes: the background and COCO's category ids 1..90


class CocoDetector(NamedTuple):
    """One torchvision COCO detector: its builder's name and its input's side."""

    builder: str  # a function of torchvision.models.detection
    image_size: int  # the square input's side (pixels)


MODELS = {
    "retinanet_coco": CocoDetector("retinanet_resnet50_fpn", 800),
    "ssd_mobilenet": CocoDetector("ssdlite320_mobilenet_v3_large", 320),
}
ALIASES = {"ssdlite": "ssd_mobilenet"}


def canonical(name: str) -> str:
    """Return the model's own name (ssdlite -> ssd_mobilenet)."""
    return ALIASES.get(name, name)


def check_model_name(name: str) -> None:
    """Raise ParameterError unless `name` is one of the COCO detectors (or another name of one)."""
    from axq.errors import ParameterError, did_you_mean

    if canonical(name) not in MODELS:
        names = [*MODELS, *ALIASES]
        raise ParameterError("model_name", name, "is not a COCO detector axq runs: " + ", ".join(names)
                             + did_you_mean(str(name), names))


def image_size(name: str, size: int | None) -> int:
    """Return the input side a run uses: the one given, else the model's own."""
    return size if size is not None else MODELS[canonical(name)].image_size


def preprocessed_query(params: dict) -> tuple[str, dict]:
    """Return the query and overrides of the preprocessed COCO entry a LoadGen run of params needs."""
    check_model_name(params["model_name"])
    return ("dataset,preprocessed,coco", {"dataset_size": params["loadgen_dataset_size"],
                                          "coco_dir": params["coco_dir"],
                                          "image_size": image_size(params["model_name"], params["image_size"])})


def new_network(name: str, size: int) -> Any:
    """Return torchvision's detector `name`, randomly initialised, its transform told the input is size x size."""
    import torchvision

    builder = getattr(torchvision.models.detection, MODELS[canonical(name)].builder)
    network = builder(weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                      detections_per_img=MAX_DETECTIONS)
    network.transform.min_size, network.transform.max_size = (size,), size
    if network.transform.fixed_size is not None:  # ssdlite resizes to a fixed size
        network.transform.fixed_size = (size, size)
    return network


def new_model(name: str, size: int) -> Any:
    """Return the wrapped detector (random weights: torch's seed decides them)."""
    return detector_class()(new_network(name, size), size)


@functools.cache
def detector_class() -> type:
    """Return the wrapper's nn.Module class (made on first use: torch is imported late)."""
    import torch
    from torch import nn

    class Detector(nn.Module):
        """A torchvision detector whose output is fixed-size rows, as every runtime's must be."""

        def __init__(self, network: nn.Module, size: int) -> None:
            super().__init__()
            self.network, self.size = network, size

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return the top MAX_DETECTIONS detections per image (N x K x 6), padded with score 0."""
            found = self.network(list(x.float()))
            rows = x.new_zeros((len(x), MAX_DETECTIONS, 6), dtype=torch.float32)
            for image, detections in enumerate(found):
                rows[image, :len(detections["scores"])] = self.rows(detections)
            return rows

        def rows(self, detections: dict[str, torch.Tensor]) -> torch.Tensor:
            """Return one image's detections as [ymin, xmin, ymax, xmax, score, category_id] (normalised by S)."""
            xmin, ymin, xmax, ymax = (detections["boxes"].float() / self.size).clamp(0, 1).unbind(1)
            return torch.stack([ymin, xmin, ymax, xmax, detections["scores"].float(),
                                detections["labels"].float()], dim=1)[:MAX_DETECTIONS]

    return Detector
