"""Train a small CenterNet-style digit detector on canvases of digits, seeded so it is reproducible.

The network is a six-layer CNN to stride 4 with two 1x1 heads: a heatmap per class (a
digit's box centre is its peak) and per cell the centre's offset within the cell and the
box's width and height (in cells). Decoding happens inside `forward` with fixed shapes
only (a 3x3 max-pool keeps the peaks, then top-k), so the model exports to ONNX and
OpenVINO as it is: `model(x)`, x float32 N x 1 x H x W in [0, 1], returns N x
MAX_DETECTIONS x 6 float32 rows [ymin, xmin, ymax, xmax] (normalised by the canvas size),
score in [0, 1], category_id (digit + 1, as a float), best score first. Rows beyond the
real digits have low scores.

The same seed, data and thread count give bitwise identical weights: torch's seed is fixed
before the model is made and the shuffling order comes from a seeded generator. Adam with
a one-cycle learning-rate schedule; the default 8 epochs on 2,000 canvases take about 45 s
on two threads and reach a COCO mAP@[.5:.95] of 0.84 on 500 test canvases (one epoch: 0.31;
random weights: 0.00), as benchmarks/train_detector.py measures.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from axq.entry import BuildContext

NUM_CLASSES = 10
MAX_DETECTIONS = 16
STRIDE = 4
WIDTH = 48
PRIOR = 0.1  # the heatmap's initial score, so the first steps do not drown in negatives


@functools.cache
def network_class() -> type:
    """Return the detector's nn.Module class (made on first use: torch is imported late)."""
    import math

    import torch
    from torch import nn

    class SmallDetector(nn.Module):
        """A CNN to stride 4, a heatmap head and a geometry head, decoded to fixed-size rows."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(*backbone_layers(nn))
            self.heatmap = nn.Conv2d(WIDTH, NUM_CLASSES, 1)
            self.geometry = nn.Conv2d(WIDTH, 4, 1)
            bias = self.heatmap.bias
            assert bias is not None, "a Conv2d has a bias unless told bias=False"
            nn.init.constant_(bias, -math.log((1 - PRIOR) / PRIOR))

        def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Return the heatmap logits (N x 10 x h x w) and geometry (N x 4 x h x w: dx, dy, w, h)."""
            features = self.backbone(x)
            return self.heatmap(features), self.geometry(features)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Return the top MAX_DETECTIONS detections per image (N x K x 6)."""
            logits, geometry = self.heads(x)
            return decode(torch.sigmoid(logits), geometry, x.shape[-2], x.shape[-1])

    return SmallDetector


def backbone_layers(nn: Any) -> list[Any]:
    """Return the conv-BN-ReLU layers taking 1 channel at full size to WIDTH channels at stride 4."""
    plan = [(1, 16, 1, 1), (16, 32, 2, 1), (32, 32, 1, 1), (32, WIDTH, 2, 1), (WIDTH, WIDTH, 1, 1),
            (WIDTH, WIDTH, 1, 2)]
    layers = []
    for inputs, outputs, stride, dilation in plan:
        layers += [nn.Conv2d(inputs, outputs, 3, stride, padding=dilation, dilation=dilation, bias=False),
                   nn.BatchNorm2d(outputs), nn.ReLU()]
    return layers


def make_model() -> Any:
    """Return the untrained detector (torch's seed decides its weights)."""
    return network_class()()


def decode(heat: Any, geometry: Any, height: int, width: int) -> Any:
    """Return N x K x 6 rows [ymin, xmin, ymax, xmax, score, category_id] from the heads' outputs."""
    import torch
    from torch.nn import functional

    cells_y, cells_x = heat.shape[-2], heat.shape[-1]
    peaks = heat * (functional.max_pool2d(heat, 3, 1, 1) == heat).to(heat.dtype)
    scores, index = peaks.flatten(1).topk(MAX_DETECTIONS, dim=1)
    category, cell = index // (cells_y * cells_x), index % (cells_y * cells_x)
    picked = geometry.flatten(2).gather(2, cell.unsqueeze(1).expand(-1, 4, -1))
    centre_x = ((cell % cells_x).to(heat.dtype) + picked[:, 0]) * (width / cells_x)
    centre_y = ((cell // cells_x).to(heat.dtype) + picked[:, 1]) * (height / cells_y)
    size = picked[:, 2:].clamp(min=0)
    half_w, half_h = size[:, 0] * (width / cells_x / 2), size[:, 1] * (height / cells_y / 2)
    corners = torch.stack([(centre_y - half_h) / height, (centre_x - half_w) / width,
                           (centre_y + half_h) / height, (centre_x + half_w) / width], dim=2)
    return torch.cat([corners.clamp(0, 1), scores.unsqueeze(2), (category + 1).to(heat.dtype).unsqueeze(2)], dim=2)


# ----------------------------------------------------------------------------- targets


def make_targets(boxes: list[Any], height: int, width: int) -> tuple[Any, Any, Any]:
    """Return the training targets of each image's boxes: heatmaps, geometry and the centres' mask.

    A box's centre cell gets a peak of 1 in its class's heatmap, spread as a Gaussian
    (sigma a sixth of the box's longer side, in cells); the geometry map holds at that cell
    the centre's offset in the cell and the box's size in cells, and the mask marks it.
    """
    import numpy as np

    cells_y, cells_x = height // STRIDE, width // STRIDE
    heat = np.zeros((len(boxes), NUM_CLASSES, cells_y, cells_x), dtype=np.float32)
    geometry = np.zeros((len(boxes), 4, cells_y, cells_x), dtype=np.float32)
    mask = np.zeros((len(boxes), cells_y, cells_x), dtype=np.float32)
    grid_y, grid_x = np.mgrid[0:cells_y, 0:cells_x]
    for i, image_boxes in enumerate(boxes):
        for x, y, w, h, category in image_boxes:
            cx, cy = (x + w / 2) / STRIDE, (y + h / 2) / STRIDE
            col, row = min(int(cx), cells_x - 1), min(int(cy), cells_y - 1)
            sigma = max(w, h) / STRIDE / 6
            spread = np.exp(-((grid_x - col) ** 2 + (grid_y - row) ** 2) / (2 * sigma ** 2))
            channel = heat[i, int(category) - 1]
            np.maximum(channel, spread, out=channel)
            geometry[i, :, row, col] = (cx - col, cy - row, w / STRIDE, h / STRIDE)
            mask[i, row, col] = 1
    return heat, geometry, mask


def focal_loss(logits: Any, target: Any) -> Any:
    """Return CenterNet's penalty-reduced focal loss of heatmap logits, per centre."""
    from torch.nn import functional

    probability = logits.sigmoid()
    positive = target.eq(1).to(logits.dtype)
    positive_loss = -functional.logsigmoid(logits) * (1 - probability) ** 2 * positive
    negative_loss = -functional.logsigmoid(-logits) * probability ** 2 * (1 - target) ** 4 * (1 - positive)
    return (positive_loss.sum() + negative_loss.sum()) / positive.sum().clamp(min=1)


def geometry_loss(predicted: Any, target: Any, mask: Any) -> Any:
    """Return the L1 loss of the offsets and sizes at the centres, per centre."""
    weight = mask.unsqueeze(1)
    return ((predicted - target).abs() * weight).sum() / weight.sum().clamp(min=1)


# ----------------------------------------------------------------------------- training


def build(ctx: BuildContext) -> dict:
    """Train the detector on the dependency's canvases and save its state_dict."""
    from axq_mlperf import training

    with training.torch_threads(ctx.params["num_threads"]):
        images, boxes = ctx.deps["dataset"].call("load_detection")
        model, loss = train(images, boxes, ctx.params, ctx)
    training.save_weights(model, ctx.path)
    return {"final_loss": round(loss, 6)}


def train(images: Any, boxes: list[Any], params: Mapping[str, Any], ctx: Any = None) -> tuple[Any, float]:
    """Return the detector trained on (images, boxes) as params say, and its last epoch's mean loss.

    `ctx` (a BuildContext, optional) gets a log line and a progress step per epoch.
    """
    import torch

    from axq_mlperf import training

    torch.manual_seed(params["seed"])
    x = torch.as_tensor(images, dtype=torch.float32)
    heat, geometry, mask = (torch.from_numpy(t) for t in make_targets(boxes, x.shape[-2], x.shape[-1]))
    model = make_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    steps = params["epochs"] * -(-len(x) // params["train_batch_size"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, params["learning_rate"], total_steps=steps)

    def loss_of(batch: Any) -> Any:
        logits, predicted = model.heads(x[batch])
        return focal_loss(logits, heat[batch]) + geometry_loss(predicted, geometry[batch], mask[batch])

    loss = training.train(model, optimiser, loss_of, len(x), params, ctx, schedule, unit="canvases")
    return model, loss


def load_model(entry: Any, device: str = "cpu") -> Any:
    """Return the trained detector in eval mode on device."""
    from axq_mlperf import training

    return training.load_weights(make_model(), entry.path, device)


# Seconds per epoch on 2,000 64 x 64 canvases, two threads on a quiet two-core machine (5.6 to 5.9 s
# measured; a busy core slows two threads down several times: 44 s measured, one thread 11 s).
EPOCH_S = 6.0


def expected_seconds(params: dict) -> float:
    """Return about how long training takes: its epochs at the measured pace, plus start-up."""
    return 3 + params["epochs"] * EPOCH_S
