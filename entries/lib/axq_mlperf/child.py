"""Run a LoadGen child process in an entry directory, its output into the build log.

A fresh process per test matters: LoadGen loads its embedded mlperf.conf only on the first
`TestSettings.FromConfig` call of a process. The child gets the axq package and the recipe
libraries on PYTHONPATH (`ctx.child_environment()`). A child that fails for a reason
the user can act on writes it to `error.json` (see `report_failure`); the build raises it
as a BuildError.

The child starts warm where it can (`ctx.python_starter`): forked from a zygote that has
imported the runtime the harness imports (axq_mlperf.preload: torch, numpy, LoadGen,
axq_mlperf) and run none of it, so each run is still a process of its own that loads
mlperf.conf itself, only 1-2 s sooner. The zygote is started and made ready before any
measurement. With AXQ_WARM_START=0, off Linux, or if the zygote cannot start or dies, the
child is a fresh `python script`. Either way it never outlives the build (kill -9 of axq
included), and a timeout kills its whole process group. A performance run is measured
(`measure=True`): the child runs inside `ctx.measuring`, which holds the machine-wide
measurement lock and reports how busy the machine was apart from the run (the warm child's
CPU time counts as ours: the zygote that reaps it is a child of axq).

The child's output (LoadGen's summary among it) is a detail: always in the build log, on
the screen with --verbose; meanwhile the screen shows the test's elapsed and expected time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from axq.errors import BuildError

if TYPE_CHECKING:
    from axq.entry import BuildContext, RunningChild

ERROR_FILE = "error.json"
WARM_MODULES = ("axq_mlperf.preload",)  # what a zygote imports once for every run
LABEL = "LoadGen child"  # its name in the build log


def run_child(ctx: BuildContext, script: Path, timeout_s: float | None, *args: str,
              measure: bool = False, expected_s: float = 0.0) -> dict | None:
    """Run `python script args` in ctx.path, its output into the log; raise BuildError if it fails.

    With `measure`, the child runs inside a measurement (one at a time per machine, see
    BuildContext.measuring) and its contention report is returned; else None. While it
    runs the screen shows its elapsed time against `expected_s` (once the lock is held).
    """
    start = ctx.python_starter(script, list(args), WARM_MODULES, LABEL)  # a zygote gets ready here, unmeasured
    shown = ctx.reporter.timed(f"LoadGen {ctx.params['loadgen_scenario']} test", expected_s)
    if not measure:
        with shown:
            tail, code = run_logged(ctx, start, timeout_s)
        report = None
    else:
        with ctx.measuring(threshold=ctx.params["contention_threshold"]) as timed, shown:
            tail, code = run_logged(ctx, start, timeout_s)
        report = timed.report
    if code != 0:
        raise child_error(Path(ctx.path), code, tail, timeout_s)
    return report


def run_logged(ctx: BuildContext, start: Callable[[], RunningChild], timeout_s: float | None) -> tuple[list[str], int]:
    """Start the child (it dies with the build), log its output; return its last lines and exit status."""
    process = start()
    timer = threading.Timer(timeout_s, kill_group, (process.pid,)) if timeout_s else None
    if timer:
        timer.start()
    try:
        tail = stream_output(ctx, process)
    finally:
        if timer:
            timer.cancel()
    return tail, process.wait()


def kill_group(pid: int) -> None:
    """Kill the child's whole process group (it leads one: see axq.process)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def stream_output(ctx: BuildContext, process: RunningChild) -> list[str]:
    """Copy the child's lines into the build log (the screen with --verbose) until it ends; return the last 20."""
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        ctx.reporter.detail(line.rstrip())
        tail = [*tail[-19:], line.rstrip()]
    process.wait()
    return tail


def child_error(path: Path, code: int, tail: list[str], timeout_s: float | None) -> BuildError:
    """Return the BuildError for a failed child: its reported reason, else its last lines."""
    report = path / ERROR_FILE
    if report.is_file():
        reason = json.loads(report.read_text(encoding="utf-8"))["reason"]
        return BuildError(f"LoadGen test failed: {reason}")
    if code < 0 and timeout_s:
        return BuildError(f"LoadGen test killed after loadgen_timeout_s={timeout_s}")
    last = next((line for line in reversed(tail) if line.strip()), "no output")
    return BuildError(f"LoadGen test process exited with status {code}: {last}")


def report_failure(error: BaseException) -> str:
    """In the child: write error.json (an AxqError's own words, else its type too); return the reason."""
    from axq.errors import AxqError

    reason = str(error) if isinstance(error, AxqError) else f"{type(error).__name__}: {error}"
    Path(ERROR_FILE).write_text(json.dumps({"reason": reason}), encoding="utf-8")
    return reason
