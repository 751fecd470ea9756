"""Provide a COCO detector (`model_name=retinanet_coco`, `ssd_mobilenet`/`ssdlite`, `yolo11n`..`x`/`yolo`) as an entry.

The model is axq_mlperf.detectors' graph of the detector (torchvision's up to its heads,
YOLO's up to its Detect head's decoded boxes), made with no download ever; the entry also
holds the anchors a torchvision detector needs and, in its results, the `postprocess` that
turns the graph's outputs into detections. Its weights, as `weights.pt` (the detector's
state_dict, the graph's `network`):

- `weights_path=FILE`: a .pt/.pth state_dict the user has (torchvision's published COCO
  weights, or their own), or for YOLO an ultralytics checkpoint; it must load strictly into
  the detector, and that state_dict is saved; a file for another model or class count is
  refused naming the path and the first key that does not fit;
- no weights_path: random weights (torch seeded with 0, so the same every time), for
  performance runs only: the entry says `random_weights`, and the accuracy getters of a
  LoadGen run of it refuse to give a mAP that means nothing.

`image_size` (null: the model's own side) is the input side: torchvision's transform is told
it, so that it resizes nothing, since the preprocessed data set has already stretched every
image to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from axq_mlperf.training import WEIGHTS

if TYPE_CHECKING:
    from axq.entry import BuildContext, Entry

RANDOM_SEED = 0  # random weights are torch's with this seed


def build(ctx: BuildContext) -> dict:
    """Make the detector and write its weights: the user's file, checked and copied, else random ones."""
    import torch

    from axq_mlperf import detectors, training
    from axq_mlperf.hashing import file_sha256

    name, size = detectors.canonical(ctx.params["model_name"]), image_size(ctx.params)
    torch.manual_seed(RANDOM_SEED)
    model = detectors.new_model(name, size)
    network = model.network
    source = training.user_weights(ctx.params["weights_path"])
    if source is None:
        training.save_weights(network, ctx.path)
        ctx.log(f"{name}: random weights (no weights_path): for performance runs only")
    else:
        training.load_fitting(network, detectors.read_weights(name, source), source, detectors.describe(name))
        training.save_weights(network, ctx.path)
        ctx.log(f"{name}: weights from {source}")
    return {"weights_source": None if source is None else str(source), "random_weights": source is None,
            "image_size": size, "weights_sha256": file_sha256(ctx.path / WEIGHTS),
            **detectors.write_spec(model.eval(), ctx.path)}


def image_size(params: Any) -> int:
    """Return the input side: the parameter, else the model's own."""
    from axq_mlperf import detectors

    return detectors.image_size(params["model_name"], params["image_size"])


def load_model(entry: Entry, device: str = "cpu") -> Any:
    """Return the detector's heads with the entry's weights, in eval mode on device (its `postprocess` decodes them)."""
    from axq_mlperf import detectors, training

    model = detectors.new_model(entry.params["model_name"], int(entry.results["image_size"]))
    training.load_weights(model.network, entry.path)
    return model.eval().to(device)
