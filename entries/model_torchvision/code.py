"""Provide torchvision's ResNet50 with checked ImageNet weights.

Where the weights come from, first found wins: the `weights_path` parameter; torch's hub
cache (`torch.hub.get_dir()/checkpoints/`), IMAGENET1K_V1 (`resnet50-0676ba61.pth`, the
weights of the MLPerf reference) before IMAGENET1K_V2 (`resnet50-11ad3fa6.pth`); a download
of IMAGENET1K_V1 through torch's hub, only where its server answers. The weights must load
strictly into `torchvision.models.resnet50()`; they are hard-linked (else copied) into the
entry as `weights.pt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WEIGHTS = "weights.pt"
CACHE_NAMES = ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")
URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
NETWORK_TIMEOUT_S = 3.0


def build(ctx: Any) -> dict:
    """Find the weights, check they fit resnet50, and copy them into the entry.

    A copy, not a link: a user who later rewrites the file in place must not change an
    entry already built from it. Its SHA-256 is kept so that a user can tell which weights
    an entry holds (the identity names the path, not the content).
    """
    import shutil

    from axq_mlperf.hashing import file_sha256

    source = find_weights(ctx.params["weights_path"], ctx.log)
    check_weights(source)
    shutil.copyfile(source, ctx.path / WEIGHTS)
    ctx.log(f"resnet50: weights from {source}")
    return {"weights_source": str(source), "weights_sha256": file_sha256(ctx.path / WEIGHTS)}


def load_model(entry: Any, device: str = "cpu") -> Any:
    """Return resnet50 with the entry's weights, in eval mode on device."""
    import torch
    import torchvision

    model = torchvision.models.resnet50()
    state = torch.load(entry.path / WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval().to(device)


def find_weights(weights_path: str | None, log: Any) -> Path:
    """Return the path of the weights: the parameter, torch's cache, or a download."""
    from axq.errors import BuildError

    if weights_path is not None:
        path = Path(weights_path).expanduser().resolve()
        if not path.is_file():
            raise BuildError(f"weights_path={weights_path}: no such file")
        return path
    cached = [path for path in cache_paths() if path.is_file()]
    if cached:
        return cached[0]
    if network_available():
        return download(log)
    raise BuildError(
        f"no resnet50 weights: none in torch's cache ({cache_paths()[0].parent}) and no "
        f"network to download them; put {URL} there as {CACHE_NAMES[0]} "
        f"or pass weights_path=FILE (a torchvision resnet50 state_dict)")


def cache_paths() -> list[Path]:
    """Return where torch's hub cache would keep each known resnet50 weights file."""
    import torch

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return [folder / name for name in CACHE_NAMES]


def network_available() -> bool:
    """Say whether the weights' server answers within a few seconds."""
    import socket
    from urllib.parse import urlparse

    try:
        socket.create_connection((urlparse(URL).hostname, 443), NETWORK_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def download(log: Any) -> Path:
    """Download the IMAGENET1K_V1 weights into torch's hub cache and return their path."""
    import torch

    log(f"resnet50: downloading {URL}")
    torch.hub.load_state_dict_from_url(URL, progress=False, check_hash=True)
    return cache_paths()[0]


def check_weights(path: Path) -> None:
    """Raise unless the file is a state_dict that loads strictly into resnet50."""
    import torch
    import torchvision

    from axq.errors import BuildError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise BuildError(f"can't read weights at {path}: {first_line(error)}") from error
    if not isinstance(state, dict):
        raise BuildError(f"weights at {path} are a {type(state).__name__}, not a state_dict")
    model = torchvision.models.resnet50()
    problem = key_mismatch(model.state_dict(), state)
    if problem:
        raise BuildError(f"weights at {path} don't fit resnet50: {problem}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise BuildError(f"weights at {path} don't fit resnet50: {first_line(error)}") from error


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


