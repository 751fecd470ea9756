"""Measure a child process that spins for `spin_s` seconds; optionally wait at a gate inside.

With `gate_dir`, once inside the measurement with the child running, the build writes the
child's pid to the `started` FIFO and waits until the test opens `release` for writing
(the test can kill axq meanwhile, or run something beside it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from axq.entry import BuildContext, Entry

SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


def build(ctx: BuildContext) -> dict:
    """Spin a child inside a measurement; return whether it was contended and the child's pid."""
    params = ctx.params
    with ctx.measuring(threshold=params["contention_threshold"]) as timed:
        child = ctx.spawn([sys.executable, "-c", SPIN, str(params["spin_s"])], stdin=subprocess.DEVNULL)
        if params["gate_dir"]:
            wait_at_gate(params["gate_dir"], child.pid)
        child.wait()
    assert timed.report is not None
    return {"contended": timed.report["contended"], "child_pid": child.pid}


def wait_at_gate(gate: str, pid: int) -> None:
    """Say the measurement runs (with the child's pid) and wait to be released."""
    with open(os.path.join(gate, "started"), "w") as started:
        started.write(f"{pid}\n")
    with open(os.path.join(gate, "release")) as release:
        release.read()


def contended(entry: Entry) -> bool:
    """Return whether the measurement ran on a busy machine."""
    return bool(entry.results["contended"])
