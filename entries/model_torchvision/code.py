"""Provide any torchvision ImageNet classifier (`model_name=`) with checked weights.

Which models there are, and each one's weights file, is the static table of
axq_mlperf.classifiers (no torchvision import at resolve time: `check_params` refuses a
name torchvision does not have, with a did-you-mean, before anything is built).

Where the weights come from, first found wins: the `weights_path` parameter; torch's hub
cache (`torch.hub.get_dir()/checkpoints/`) under the name torchvision gives the model's
weights (for resnet50 IMAGENET1K_V1, `resnet50-0676ba61.pth`, the weights of the MLPerf
reference, before IMAGENET1K_V2, `resnet50-11ad3fa6.pth`); a download through torch's hub,
only where its server answers. The weights must load strictly into
`torchvision.models.get_model(model_name)`; they are copied into the entry as `weights.pt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from axq_mlperf.classifiers import CONSTRUCTOR, MODELS, WEIGHTS_URL, check_model_name
from axq_mlperf.training import WEIGHTS, check_state_dict

if TYPE_CHECKING:
    from axq.entry import BuildContext, Entry

MORE_CACHE_NAMES = {"resnet50": ("resnet50-11ad3fa6.pth",)}  # other published weights of the same model
NETWORK_TIMEOUT_S = 3.0


def check_params(params: dict) -> None:
    """Raise ParameterError for a model_name that is not a torchvision ImageNet classifier."""
    check_model_name(params["model_name"])


def build(ctx: BuildContext) -> dict:
    """Find the weights, check they fit the model, and copy them into the entry.

    A copy, not a link: a user who later rewrites the file in place must not change an
    entry already built from it. Its SHA-256 is kept so that a user can tell which weights
    an entry holds (the identity names the path, not the content).
    """
    import shutil

    from axq_mlperf.hashing import file_sha256

    name = ctx.params["model_name"]
    source = find_weights(name, ctx.params["weights_path"], ctx.log)
    check_weights(name, source)
    shutil.copyfile(source, ctx.path / WEIGHTS)
    ctx.log(f"{name}: weights from {source}")
    return {"weights_source": str(source), "weights_sha256": file_sha256(ctx.path / WEIGHTS)}


def load_model(entry: Entry, device: str = "cpu") -> Any:
    """Return the model with the entry's weights, in eval mode on device."""
    from axq_mlperf import training

    return training.load_weights(new_model(entry.params["model_name"]), entry.path, device)


def new_model(name: str) -> Any:
    """Return torchvision's model `name`, randomly initialised, built as its weights expect."""
    import torchvision

    return torchvision.models.get_model(name, weights=None, **CONSTRUCTOR.get(name, {}))


def find_weights(name: str, weights_path: str | None, log: Any) -> Path:
    """Return the path of the weights: the parameter, torch's cache, or a download."""
    from axq.errors import BuildError
    from axq_mlperf.training import user_weights

    given = user_weights(weights_path)
    if given is not None:
        return given
    cached = [path for path in cache_paths(name) if path.is_file()]
    if cached:
        return cached[0]
    if network_available():
        return download(name, log)
    first = cache_paths(name)[0]
    raise BuildError(
        f"no {name} weights: none in torch's cache ({first.parent}) and no network to download them; "
        f"put {WEIGHTS_URL}{first.name} there as {first.name} "
        f"or pass weights_path=FILE (a torchvision {name} state_dict)")


def cache_paths(name: str) -> list[Path]:
    """Return where torch's hub cache would keep each known weights file of the model."""
    import torch

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return [folder / file for file in (MODELS[name].weights_file, *MORE_CACHE_NAMES.get(name, ()))]


def network_available() -> bool:
    """Say whether the weights' server answers within a few seconds."""
    import socket
    from urllib.parse import urlparse

    try:
        socket.create_connection((urlparse(WEIGHTS_URL).hostname, 443), NETWORK_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def download(name: str, log: Any) -> Path:
    """Download the model's weights into torch's hub cache and return their path."""
    import torch

    url = WEIGHTS_URL + MODELS[name].weights_file
    log(f"{name}: downloading {url}")
    torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True)
    return cache_paths(name)[0]


def check_weights(name: str, path: Path) -> None:
    """Raise unless the file is a state_dict that loads strictly into the model."""
    check_state_dict(new_model(name), path, name)
