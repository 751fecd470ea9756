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
WEIGHTS = "weights.pt"


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
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(ctx.params["num_threads"])
    try:
        model, loss = train(ctx)
    finally:
        torch.set_num_threads(threads)
    torch.save(model.state_dict(), ctx.path / WEIGHTS)
    return {"final_loss": round(loss, 6)}


def train(ctx: BuildContext) -> tuple[Any, float]:
    """Return the network trained as ctx.params say, and its last epoch's mean loss."""
    import torch

    params, epochs = ctx.params, ctx.params["epochs"]
    torch.manual_seed(params["seed"])
    images, labels = ctx.deps["dataset"].call("load_arrays", False)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    model = make_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
    order = torch.Generator().manual_seed(params["seed"])
    loss = float("nan")
    for epoch in ctx.progress(range(epochs), total=epochs, desc="training"):
        loss = train_epoch(model, optimiser, x, y, params["train_batch_size"], order)
        ctx.log(f"epoch {epoch + 1}/{epochs}: mean loss {loss:.4f} on {len(y)} images")
    return model, loss


def train_epoch(model: Any, optimiser: Any, x: Any, y: Any, batch_size: int,
                generator: Any) -> float:
    """Run one pass over (x, y) in a seeded shuffled order; return the mean loss."""
    import torch
    from torch.nn import functional

    model.train()
    total = 0.0
    for batch in torch.randperm(len(y), generator=generator).split(batch_size):
        optimiser.zero_grad()
        loss = functional.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
    return total / len(y)


def load_model(entry: Any, device: str = "cpu") -> Any:
    """Return the trained network in eval mode on device."""
    import torch

    model = make_model()
    state = torch.load(entry.path / WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval().to(device)


# Seconds per epoch of training, measured on two cores (digits: 1,347 images; Fashion-MNIST: 60,000).
EPOCH_S = {"digits": 2.0, "fashion_mnist": 30.0}


def expected_seconds(params: dict) -> float:
    """Return about how long training takes: its epochs at the measured pace, plus start-up."""
    return 3 + params["epochs"] * EPOCH_S.get(params["dataset_name"], 30.0)
