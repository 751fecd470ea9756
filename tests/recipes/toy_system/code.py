"""Measure a toy figure on this machine; refuse another machine's `system`; optionally block once at a gate.

The fingerprint is this machine's (`axq_mlperf.system`), unless AXQ_TEST_SYSTEM names a
simulated one (each node of the test cluster gets its own). With `gate_dir` and
`block_value`, the first build of that value writes its pid to the gate's `started` FIFO and
then waits on its `release` FIFO for ever: the test kills it there (a node dying mid-point).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from axq.entry import BuildContext, Entry


def machine_fingerprint() -> str:
    """Return the simulated machine's name if the test sets one, else this machine's fingerprint."""
    from axq_mlperf import system

    return os.environ.get("AXQ_TEST_SYSTEM") or system.fingerprint()


def needs(params: dict) -> dict:
    """Ask the cluster for a GPU when a point says `device=cuda...` (the "resources" hook; no such parameter here)."""
    return {"num_gpus": 1} if str(params.get("device", "")).startswith("cuda") else {}


def build(ctx: BuildContext) -> dict:
    """Refuse another machine's system, block at the gate if asked, measure, and record where."""
    from axq.measure import lock_path
    from axq_mlperf import system

    params = ctx.params
    system.require_here(params["system"], machine_fingerprint())
    if params["fail"]:
        from axq.errors import BuildError

        raise BuildError(f"point value={params['value']} was asked to fail")
    if params["gate_dir"] and params["value"] == params["block_value"]:
        block_once(params["gate_dir"])
    with ctx.measuring():
        figure = 2 * params["value"] + ctx.deps["base"].get("stored")
    (ctx.path / "figure.txt").write_text(f"{figure}\n")
    return {"system": params["system"], "pid": os.getpid(), "measure_lock": lock_path()}


def block_once(gate: str) -> None:
    """The first time: say so (our pid) through the `started` FIFO, then wait on `release` for ever."""
    try:
        os.close(os.open(os.path.join(gate, "once"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    with open(os.path.join(gate, "started"), "w") as started:
        started.write(f"{os.getpid()}\n")
    with open(os.path.join(gate, "release")) as release:
        release.read()


def doubled(entry: Entry) -> int:
    """Return the figure the build wrote."""
    return int((entry.path / "figure.txt").read_text())


def measured_on(entry: Entry) -> str:
    """Return the machine that measured it."""
    return entry.results["system"]
