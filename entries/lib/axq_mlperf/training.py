"""What the embedded models' recipes share: a seeded training loop, the build's torch threads, the weights file.

The same seed, data and thread count give bitwise identical weights: the caller fixes
torch's seed before it makes the model, and each epoch's shuffled order comes from a
generator seeded once per training. Nothing here imports torch at the top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

WEIGHTS = "weights.pt"  # a model entry's state_dict


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch on `count` threads, then give back the count it had."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(model: Any, optimiser: Any, loss_of: Callable[[Any], Any], size: int, params: Mapping[str, Any],
          ctx: Any = None, schedule: Any = None, unit: str = "samples") -> float:
    """Train `model` for params' `epochs` over `size` samples; return the last epoch's mean loss.

    Each epoch visits the samples once in a shuffled order from a generator seeded with
    params' `seed`, in batches of `train_batch_size` sample indices; `loss_of(indices)` is the
    batch's loss tensor. `schedule` (a learning-rate scheduler) steps after each batch.
    `ctx` (a BuildContext, optional) gets a progress step and a log line per epoch.
    """
    import torch

    order = torch.Generator().manual_seed(params["seed"])
    epochs = params["epochs"]
    loop = range(epochs) if ctx is None else ctx.progress(range(epochs), total=epochs, desc="training")
    loss = float("nan")
    for epoch in loop:
        model.train()
        total = 0.0
        for batch in torch.randperm(size, generator=order).split(params["train_batch_size"]):
            optimiser.zero_grad()
            batch_loss = loss_of(batch)
            batch_loss.backward()
            optimiser.step()
            if schedule is not None:
                schedule.step()
            total += batch_loss.item() * len(batch)
        loss = total / size
        if ctx is not None:
            ctx.log(f"epoch {epoch + 1}/{epochs}: mean loss {loss:.4f} on {size} {unit}")
    model.eval()
    return loss


def save_weights(model: Any, directory: Path) -> None:
    """Write the model's state_dict as the entry's weights file."""
    import torch

    torch.save(model.state_dict(), directory / WEIGHTS)


def load_weights(model: Any, directory: Path, device: str = "cpu") -> Any:
    """Return `model` (untrained, made as the weights expect) with the entry's weights, in eval mode on device."""
    import torch

    model.load_state_dict(torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval().to(device)
