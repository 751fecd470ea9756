"""Train a small CNN on a preprocessed training split, seeded so it is reproducible.

The same seed, data and thread count give bitwise identical weights: the shuffling order
comes from a seeded generator and torch's own seed is fixed before the model is made.
The network takes N x 1 x H x W inputs of any size H, W >= 4 (8x8 digits, 28x28
Fashion-MNIST): an adaptive pooling layer fixes the classifier's input size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import BuildContext

NUM_CLASSES = 10


def make_model() -> Any:
    """Return the untrained network: two conv-BN-ReLU-pool blocks, adaptive pooling, an MLP."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(32 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES),
    )


def build(ctx: BuildContext) -> dict:
    """Train the network on the dependency's images and save its state_dict."""
    from axq_mlperf import training

    with training.torch_threads(ctx.params["num_threads"]):
        model, loss = train(ctx)
    training.save_weights(model, ctx.path)
    return {"final_loss": round(loss, 6)}


def train(ctx: BuildContext) -> tuple[Any, float]:
    """Return the network trained as ctx.params say, and its last epoch's mean loss."""
    import torch
    from torch.nn import functional

    from axq_mlperf import training

    params = ctx.params
    torch.manual_seed(params["seed"])
    images, labels = ctx.deps["dataset"].call("load_arrays", False)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    model = make_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    loss = training.train(model, optimiser, lambda batch: functional.cross_entropy(model(x[batch]), y[batch]),
                          len(y), params, ctx, unit="images")
    return model, loss


def load_model(entry: Any, device: str = "cpu") -> Any:
    """Return the trained network in eval mode on device."""
    from axq_mlperf import training

    return training.load_weights(make_model(), entry.path, device)


# Seconds per epoch of training, measured on two cores (digits: 1,347 images; Fashion-MNIST: 60,000).
EPOCH_S = {"digits": 2.0, "fashion_mnist": 30.0}


def expected_seconds(params: dict) -> float:
    """Return about how long training takes: its epochs at the measured pace, plus start-up."""
    return 3 + params["epochs"] * EPOCH_S.get(params["dataset_name"], 30.0)
