"""Import what a LoadGen child imports, for the zygote it is forked from (axq.zygote, axq_mlperf.child).

The modules harness.py and the backends' loaders import: numpy, torch, LoadGen, axq and
axq_mlperf's. Importing runs nothing of them (no torch op: no OpenMP pool exists before
a fork; no LoadGen call: each fork loads mlperf.conf itself). A fork should start as a
fresh process does after these imports, so two things torch and numpy do differently after
a fork are undone here:

- torch registers `torch.get_num_threads` to run in every forked child (it re-creates an
  OpenMP pool used before the fork, pytorch gh-28389). Run there, it fixes the main
  thread's thread count at the default before the harness sets it, so the main thread
  reports every core where a fresh process reports num_threads (the instance threads,
  which set their own, are not affected). No pool exists before our forks: it is left out.
- numpy's global random state would be the zygote's in every fork; each fork seeds it
  anew, as a fresh process does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def _without_torch_thread_setup(register: Callable[..., None]) -> Callable[..., None]:
    """Wrap os.register_at_fork so that it drops torch's `after_in_child=torch.get_num_threads`."""

    def filtered(**hooks: Any) -> None:
        hook = hooks.get("after_in_child")
        if getattr(hook, "__name__", "") == "get_num_threads" and getattr(hook, "__module__", "") == "torch":
            hooks.pop("after_in_child")
        if hooks:
            register(**hooks)

    return filtered


def _import_torch() -> None:
    """Import torch, leaving out its after-fork thread setup (see the module doc)."""
    register = os.register_at_fork
    os.register_at_fork = _without_torch_thread_setup(register)
    try:
        import torch  # noqa: F401
    finally:
        os.register_at_fork = register


def _reseed_numpy() -> None:
    import numpy as np

    np.random.seed()


_import_torch()
os.register_at_fork(after_in_child=_reseed_numpy)

import mlperf_loadgen  # noqa: E402, F401
import numpy  # noqa: E402, F401

import axq.entry  # noqa: E402
import axq.errors  # noqa: E402, F401
from axq_mlperf import backends, breakdown, child, completion, config, results, scenarios, userconf  # noqa: E402, F401
