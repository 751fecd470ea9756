"""The COCO detectors: each one's constructor, square input size, and the split the runtimes run.

The table is static, so that checking a `model_name` at resolve time costs no torchvision
import. Nothing is ever downloaded: weights come from `weights_path`, else they are random.

- `retinanet_coco`: torchvision's `retinanet_resnet50_fpn`, 800 x 800 input;
- `ssd_mobilenet` (also `ssdlite`): torchvision's `ssdlite320_mobilenet_v3_large`, 320 x 320;
- `yolo11n` ... `yolo11x` (`yolo`: `yolo11l`, MLPerf's): ultralytics' YOLO11, 640 x 640
  (axq_mlperf.yolo, the only code that imports ultralytics, an optional AGPL-3.0 extra).

torchvision's are built with `weights=None, weights_backbone=None` and predict its 91 COCO
classes, whose indices are COCO's category ids (index 0 is the background, the gaps are
torchvision's `N/A` entries), so a label is the category id the scorer wants as it is;
YOLO's 80 classes are mapped to those ids as MLPerf's reference harness maps them.

A detector runs in two parts, so that every runtime runs the same graph:

- `Heads` (the model entry's `load_model`, what torch.onnx.export and OpenVINO take; YOLO's
  is axq_mlperf.yolo's `Graph`, its Detect head's decoded boxes and scores): float32
  N x 3 x S x S in [0, 1] (the preprocessed data set stretches each image to S x S, so boxes
  normalised by the image's own size stay valid), normalised and padded as torchvision's
  transform does, through the backbone and heads: N x A x (4 + classes), each anchor's box
  regression then class logits. Fixed-shape, with nothing that branches on the data.
- `Postprocess` (after any runtime, in the backend's decoding): torchvision's own
  `postprocess_detections` of the model (score threshold, top-k per level, batched NMS) on
  those outputs and the anchors the model entry stored, giving N x MAX_DETECTIONS x 6
  float32 rows [ymin, xmin, ymax, xmax, score, category_id] normalised by S, best first,
  padded with score 0: the rows axq_mlperf.tasks.detection encodes. Together they give what
  the torchvision model itself gives (tests/test_coco_detectors.py checks it).

The model entry's results carry `postprocess` (the spec below) and its directory ANCHORS;
converted entries copy both (`carry`), and axq_mlperf.backends decodes any model whose
results have them with `postprocess_of`.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from axq.entry import Entry

MAX_DETECTIONS = 100  # rows per image (MLPerf's RetinaNet keeps at most 100 per image too)
NUM_CLASSES = 91  # torchvision's COCO classes: the background and COCO's category ids 1..90
ANCHORS = "anchors.npy"  # in a model entry: A x 4 float32 anchors (x1, y1, x2, y2) of its input size
BOX_REGRESSION = 4  # the first values of each anchor's output row


class CocoDetector(NamedTuple):
    """One torchvision COCO detector: its builder's name, its input's side and its post-processing kind."""

    builder: str  # a function of torchvision.models.detection
    image_size: int  # the square input's side (pixels)
    kind: str  # whose postprocess_detections decodes it: retinanet or ssd
    no_pytorch_int8: str | None = None  # why PT2E can't quantize it, if it can't


MODELS = {
    "retinanet_coco": CocoDetector("retinanet_resnet50_fpn", 800, "retinanet",
                                   "torchao's x86 PT2E quantizer refuses its FPN (`Input partition has more than "
                                   "one output node`)"),
    "ssd_mobilenet": CocoDetector("ssdlite320_mobilenet_v3_large", 320, "ssd"),
    **{f"yolo11{size}": CocoDetector(f"yolo11{size}", 640, "yolo") for size in ("n", "s", "m", "l", "x")},
}
ALIASES = {"ssdlite": "ssd_mobilenet", "yolo": "yolo11l"}  # yolo: MLPerf's (yolo-99 / yolo-95)


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


def check_runtime(name: str, framework: str, precision: str) -> None:
    """Raise ParameterError for a runtime and precision the detector can't be made for."""
    from axq.errors import ParameterError

    reason = MODELS[canonical(name)].no_pytorch_int8
    if reason is not None and framework == "pytorch" and precision == "int8":
        raise ParameterError("precision", "int8", f"is not available for model_name={name} on framework=pytorch: "
                             f"{reason}; use framework=onnxrt or framework=openvino")


def describe(name: str) -> str:
    """Return the detector as a weights error names it: `retinanet_coco (retinanet_resnet50_fpn, 91 classes)`."""
    model = MODELS[canonical(name)]
    if model.kind == "yolo":
        return f"{canonical(name)} (ultralytics' {model.builder}.yaml, 80 classes)"
    return f"{canonical(name)} ({model.builder}, {NUM_CLASSES} classes)"


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
    """Return the detector `name`, randomly initialised (torchvision's: its transform told the input's side)."""
    import torchvision

    if MODELS[canonical(name)].kind == "yolo":
        from axq_mlperf import yolo

        return yolo.new_network(canonical(name))
    builder = getattr(torchvision.models.detection, MODELS[canonical(name)].builder)
    network = builder(weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                      detections_per_img=MAX_DETECTIONS)
    network.transform.min_size, network.transform.max_size = (size,), size
    if network.transform.fixed_size is not None:  # ssdlite resizes to a fixed size
        network.transform.fixed_size = (size, size)
    return network


def new_model(name: str, size: int) -> Any:
    """Return the graph the runtimes run (random weights: torch's seed decides them)."""
    if MODELS[canonical(name)].kind == "yolo":
        from axq_mlperf import yolo

        return yolo.graph_class()(new_network(name, size), size)
    return heads_class()(new_network(name, size), size, MODELS[canonical(name)].kind)


def read_weights(name: str, path: Path) -> dict:
    """Return the state_dict in a weights file for the detector `name` (ultralytics' checkpoints for YOLO)."""
    from axq_mlperf import training

    if MODELS[canonical(name)].kind == "yolo":
        from axq_mlperf import yolo

        return yolo.read_weights(path)
    return training.read_state_dict(path)


# ----------------------------------------------------------------------------- the graph


@functools.cache
def heads_class() -> type:
    """Return the graph's nn.Module class (made on first use: torch is imported late)."""
    import torch
    from torch import nn

    class Heads(nn.Module):
        """A torchvision detector up to its heads' outputs: what every runtime runs."""

        network: Any  # the torchvision detector (its transform's settings, backbone and head)
        mean: torch.Tensor
        std: torch.Tensor

        def __init__(self, network: nn.Module, size: int, kind: str) -> None:
            super().__init__()
            self.network, self.size, self.kind = network, size, kind
            transform: Any = network.transform
            self.padded: int = -(-size // transform.size_divisible) * transform.size_divisible
            self.register_buffer("mean", torch.tensor(transform.image_mean).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(transform.image_std).view(1, 3, 1, 1), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return N x A x (4 + classes): every anchor's box regression, then its class logits."""
            images = (x - self.mean) / self.std
            if self.padded != self.size:  # torchvision pads the normalised batch with zeros, right and bottom
                images = nn.functional.pad(images, (0, self.padded - self.size, 0, self.padded - self.size))
            head = self.network.head(self.features(images))
            return torch.cat([head["bbox_regression"], head["cls_logits"]], dim=2)

        def features(self, images: torch.Tensor) -> list[torch.Tensor]:
            """Return the backbone's feature maps, in order."""
            found = self.network.backbone(images)
            return [found] if isinstance(found, torch.Tensor) else list(found.values())

        def spec(self) -> tuple[dict[str, Any], Any]:
            """Return the post-processing spec and the anchors (A x 4 float32, numpy).

            The anchors are the anchor generator's for the padded input, from feature maps
            of the backbone's output sizes (one run of the backbone on zeros).
            """
            from torchvision.models.detection.image_list import ImageList

            network, size = self.network, self.size
            with torch.inference_mode():
                zeros = torch.zeros(1, 3, self.padded, self.padded)
                features = self.features(zeros)
                anchors = network.anchor_generator(ImageList(zeros, [(size, size)]), features)[0]
            cells = [f.shape[-2] * f.shape[-1] for f in features]
            per_cell, coder = len(anchors) // sum(cells), network.box_coder
            spec = {"kind": self.kind, "image_size": size,
                    "levels": [per_cell * n for n in cells], "score_thresh": network.score_thresh,
                    "nms_thresh": network.nms_thresh, "topk_candidates": network.topk_candidates,
                    "detections_per_img": network.detections_per_img, "box_weights": list(coder.weights),
                    "bbox_xform_clip": coder.bbox_xform_clip}
            return spec, anchors.numpy().astype("float32")

    return Heads


def write_spec(model: Any, directory: Path) -> dict[str, Any]:
    """Write the graph's anchors (if it has any) into its entry directory; return its post-processing results key."""
    import numpy as np

    spec, anchors = model.spec()
    if anchors is not None:
        np.save(directory / ANCHORS, anchors)
    return {"postprocess": spec}


def carry(source: Entry, directory: Path) -> dict[str, Any]:
    """Copy a detector's anchors from the entry a model was made from; return its results key (none: {})."""
    if "postprocess" not in source.results:
        return {}
    if (source.path / ANCHORS).exists():
        shutil.copyfile(source.path / ANCHORS, directory / ANCHORS)
    return {"postprocess": source.results["postprocess"]}


# ----------------------------------------------------------------------------- post-processing


def postprocess_of(entry: Entry) -> Postprocess | None:
    """Return the post-processing of a model entry whose outputs need it (a COCO detector's), else None."""
    spec = entry.results.get("postprocess")
    return None if spec is None else Postprocess(spec, entry.path / ANCHORS)


class Postprocess:
    """A detector's own post-processing of its graph's outputs, as fixed-size rows per image."""

    def __init__(self, spec: dict[str, Any], anchors: Path) -> None:
        self.size = int(spec["image_size"])
        if spec["kind"] == "yolo":  # its head decodes its own boxes: no anchors, ultralytics' NMS
            from axq_mlperf import yolo

            self.detections: Callable[[Any], list[dict[str, Any]]] = functools.partial(yolo.detections, spec)
        else:
            self.detections = TorchvisionDetections(spec, anchors)

    def __call__(self, output: Any) -> Any:
        """Return N x MAX_DETECTIONS x 6 rows from N x A x (4 + classes) outputs (numpy in, numpy out)."""
        import numpy as np
        import torch

        is_numpy = not isinstance(output, torch.Tensor)
        raw = (torch.from_numpy(np.asarray(output)) if is_numpy else output).to("cpu", torch.float32)
        with torch.inference_mode():
            found = self.detections(raw)
            rows = torch.zeros((len(raw), MAX_DETECTIONS, 6), dtype=torch.float32)
            for image, detections in enumerate(found):
                rows[image, :len(detections["scores"])] = self.rows(detections)
        return rows.numpy() if is_numpy else rows

    def rows(self, detections: dict[str, Any]) -> Any:
        """Return one image's detections as [ymin, xmin, ymax, xmax, score, category_id] (normalised by S)."""
        import torch

        xmin, ymin, xmax, ymax = (detections["boxes"] / self.size).clamp(0, 1).unbind(1)
        return torch.stack([ymin, xmin, ymax, xmax, detections["scores"],
                            detections["labels"].float()], dim=1)[:MAX_DETECTIONS]


class TorchvisionDetections:
    """torchvision's postprocess_detections of the model's kind, on its heads' outputs and stored anchors."""

    def __init__(self, spec: dict[str, Any], anchors: Path) -> None:
        import numpy as np
        import torch
        from torchvision.models.detection import _utils, retinanet, ssd

        self.kind, self.size, self.levels = spec["kind"], int(spec["image_size"]), [int(n) for n in spec["levels"]]
        self.anchors = torch.from_numpy(np.load(anchors))
        coder = _utils.BoxCoder(tuple(spec["box_weights"]), spec["bbox_xform_clip"])
        self.model = type("Settings", (), {  # what postprocess_detections reads of its model
            "box_coder": coder, "score_thresh": spec["score_thresh"], "nms_thresh": spec["nms_thresh"],
            "topk_candidates": spec["topk_candidates"], "detections_per_img": spec["detections_per_img"]})()
        self.method = (ssd.SSD if self.kind == "ssd" else retinanet.RetinaNet).postprocess_detections

    def __call__(self, raw: Any) -> list[dict[str, Any]]:
        """Return each image's detections (boxes in pixels, scores, COCO category ids)."""
        regression, logits = raw[..., :BOX_REGRESSION], raw[..., BOX_REGRESSION:]
        shapes = [(self.size, self.size)] * len(regression)
        if self.kind == "ssd":
            head = {"bbox_regression": regression, "cls_logits": logits}
            return self.method(self.model, head, [self.anchors] * len(regression), shapes)
        split = {"bbox_regression": list(regression.split(self.levels, dim=1)),
                 "cls_logits": list(logits.split(self.levels, dim=1))}
        return self.method(self.model, split, [list(self.anchors.split(self.levels))] * len(regression), shapes)

