"""Name the machine that measures: a short, readable fingerprint for the `system` parameter.

A LoadGen figure belongs to the machine that measured it. Recipes whose results depend on
the machine declare a `system` parameter whose default is `fingerprint()` (see
docs/recipes.md, `default_from`), so the machine is in the entry's identity: a collection
copied or imported elsewhere never hands back another machine's figure, and a query may
still ask for `system=...` to read results measured there.

The fingerprint covers the CPU model and the cores this process may use, the GPU model and
count, total memory, the OS, Python and the versions of the frameworks that change the
numbers; it reads as `amd-epyc-9b45-2c-24g-cpu-linux-<hash8>`, the hash covering every part
of `description()`. Cheap and light: /proc and /sys reads and importlib.metadata, no torch,
no subprocess (it runs at resolve time).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import Any

NVIDIA_GPUS = "/proc/driver/nvidia/gpus"  # one folder per GPU, each with an `information` file
FRAMEWORKS = ("torch", "torchvision", "onnxruntime", "openvino", "mlcommons-loadgen", "numpy")
_NOISE = re.compile(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|\bwith\b.*|@.*|\d+-core\b|\bcore\(tm\)", re.IGNORECASE)


def description() -> dict[str, Any]:
    """Return the parts of this machine's fingerprint."""
    gpu_model, gpu_count = gpus()
    return {
        "cpu_model": cpu_model(),
        "cpu_cores": usable_cores(),
        "gpu_model": gpu_model,
        "gpu_count": gpu_count,
        "memory_gib": memory_gib(),
        "os": operating_system(),
        "machine": os.uname().machine,
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "frameworks": framework_versions(),
    }


def fingerprint(parts: dict[str, Any] | None = None) -> str:
    """Return this machine's fingerprint (or that of the given parts): readable words, then a hash."""
    parts = description() if parts is None else parts
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]
    gpu = f"{parts['gpu_count']}x{slug(parts['gpu_model'])}" if parts["gpu_count"] else "cpu"
    words = [slug(parts["cpu_model"]), f"{parts['cpu_cores']}c", f"{parts['memory_gib']}g", gpu,
             parts["os"].split("-")[0], digest]
    return "-".join(w for w in words if w)


def slug(text: str) -> str:
    """Shorten a model name to lowercase words: `AMD EPYC 9B45 64-Core Processor` -> `amd-epyc-9b45`."""
    cleaned = _NOISE.sub(" ", text.replace("NVIDIA", "").replace("GeForce", ""))
    return "-".join(re.findall(r"[a-z0-9]+", cleaned.lower()))[:32].strip("-") or "unknown"


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (else the machine type)."""
    for line in _lines("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
            return value.strip()
    return os.uname().machine or "unknown"


def usable_cores() -> int:
    """Return how many CPUs this process may run on (its affinity), else how many are online."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_gib() -> int:
    """Return total memory in GiB, rounded (0 if unknown)."""
    for line in _lines("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20)
    return 0


def gpus() -> tuple[str, int]:
    """Return the NVIDIA GPU model and how many are visible, from the driver's /proc files ("", 0 if none)."""
    models = sorted(_gpu_model(os.path.join(NVIDIA_GPUS, bus)) for bus in _listdir(NVIDIA_GPUS))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        models = models[:len([d for d in visible.split(",") if d.strip() and not d.strip().startswith("-")])]
    return (models[0] if models else ""), len(models)


def _gpu_model(directory: str) -> str:
    for line in _lines(os.path.join(directory, "information")):
        key, _, value = line.partition(":")
        if key.strip() == "Model":
            return value.strip()
    return "unknown"


def operating_system() -> str:
    """Return the OS and distribution release: `linux-debian-12`."""
    release: dict[str, str] = {}
    for line in _lines("/etc/os-release"):
        key, _, value = line.partition("=")
        release[key] = value.strip().strip('"')
    parts = [os.uname().sysname.lower() or sys.platform, release.get("ID", ""), release.get("VERSION_ID", "")]
    return "-".join(p for p in parts if p)


def framework_versions() -> dict[str, str]:
    """Return the installed versions of the frameworks that change the numbers (absent ones left out).

    Read from the `name-version.dist-info` folders on sys.path, first one winning as imports do
    (importlib.metadata would cost tens of milliseconds at resolve time).
    """
    wanted = {_normal(name): name for name in FRAMEWORKS}
    found: dict[str, str] = {}
    for folder in sys.path:
        for item in _listdir(folder or "."):
            stem, dot, kind = item.rpartition(".")
            name, dash, version = stem.partition("-")
            if dot and dash and kind in ("dist-info", "egg-info") and wanted.get(_normal(name)) not in (None, *found):
                found[wanted[_normal(name)]] = version
    return dict(sorted(found.items()))


def _normal(name: str) -> str:
    """Normalise a distribution name as packaging does (`mlcommons-loadgen` = `mlcommons_loadgen`)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def require_here(system: str, here: str | None = None) -> None:
    """Refuse to measure for another machine: a build whose `system` is not this one's raises BuildError.

    Results of another machine come here by `axq import` (or a sweep `--on=ray`), never by
    measuring here under its name.
    """
    here = fingerprint() if here is None else here
    if system != here:
        from axq.errors import BuildError

        raise BuildError(f"system={system} is another machine (this one is {here}): its results can only be "
                         "imported (axq import), not measured here")


def require_device_here(device: str | None, system: str | None) -> None:
    """Refuse (BuildError, exit 1) a CUDA run measured on this machine when it has no CUDA device.

    Checked with the parameters, before anything is built; a run whose `system` names
    another machine is that machine's business (its results come here by import).
    """
    if not str(device).startswith("cuda") or gpus()[1] > 0 or (system is not None and system != fingerprint()):
        return
    from axq.errors import BuildError

    raise BuildError(f"no CUDA device here: device={device} needs an NVIDIA GPU, and this machine "
                     "shows none (/proc/driver/nvidia/gpus, CUDA_VISIBLE_DEVICES); run with device=cpu")


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
