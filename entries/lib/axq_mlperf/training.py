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


def user_weights(weights_path: str | None) -> Path | None:
    """Return the weights file a `weights_path` names (None: none given), or raise BuildError if it is no file."""
    from axq.errors import BuildError

    if weights_path is None:
        return None
    path = Path(weights_path).expanduser().resolve()
    if not path.is_file():
        raise BuildError(f"weights_path={weights_path}: no such file")
    return path


def check_state_dict(model: Any, path: Path, name: str) -> None:
    """Raise BuildError unless the file at path is a state_dict that loads strictly into model (named name)."""
    load_fitting(model, read_state_dict(path), path, name)


def read_state_dict(path: Path) -> dict:
    """Return the state_dict in a weights file, or raise BuildError naming the path."""
    import torch

    from axq.errors import BuildError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise BuildError(f"can't read weights at {path}: {first_line(error)}") from error
    if not isinstance(state, dict):
        raise BuildError(f"weights at {path} are a {type(state).__name__}, not a state_dict")
    return state


def load_fitting(model: Any, state: dict, path: Path, name: str) -> None:
    """Load state (read from path) strictly into model (named name), or raise BuildError saying what doesn't fit."""
    from axq.errors import BuildError

    problem = key_mismatch(model.state_dict(), state)
    if problem:
        raise BuildError(f"weights at {path} don't fit {name}: {problem}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise BuildError(f"weights at {path} don't fit {name}: {first_line(error)}") from error


def key_mismatch(expected: dict, found: dict) -> str:
    """Describe the first missing, unexpected or misshapen key of a state_dict, or ""."""
    missing = [key for key in expected if key not in found]
    if missing:
        return f"missing key `{missing[0]}` ({len(missing)} missing)"
    unexpected = [key for key in found if key not in expected]
    if unexpected:
        return f"unexpected key `{unexpected[0]}` ({len(unexpected)} unexpected)"
    for key, tensor in expected.items():
        shape = tuple(getattr(found[key], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"`{key}` has shape {shape}, expected {tuple(tensor.shape)}"
    return ""


def first_line(error: Exception) -> str:
    """Return the first non-empty line of an exception's message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
