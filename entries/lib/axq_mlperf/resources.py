"""Say what a LoadGen run needs of a cluster node (the recipes' `"resources"` hook, read by axq.cluster)."""

from __future__ import annotations

from typing import Any


def cluster_resources(params: dict[str, Any]) -> dict[str, Any]:
    """Return the Ray task options a run needs beyond one CPU: a GPU for `device=cuda` or `cuda:N`."""
    return {"num_gpus": 1} if str(params.get("device", "")).startswith("cuda") else {}
