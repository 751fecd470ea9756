"""Run the jobs of a sweep or an exploration and return their rows: here one at a time, or on a cluster.

A `Job` is one point of a sweep (`axq.sweeps.Point`) or one configuration of an
exploration (`axq.exploration.Configuration`): it knows how to build itself in a work
collection and read its row, what the cluster must give it, and which entries its row
reads. An `Executor` runs a list of jobs and returns one row per job, in order:
`Sequential` builds them here, one after another; `axq.cluster.Ray` sends them to a Ray
cluster and imports what they built. Neither knows what a job measures, and a sweep or an
exploration does not know where its jobs ran: `--on=ray` is a choice of executor.

Ctrl-C stops an executor: it raises `SweepInterrupted` with the rows finished so far and
the job it stopped in (their entries are kept; the interrupted job's half-built entry is not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from axq.errors import Interrupted
from axq.progress import Reporter

if TYPE_CHECKING:
    from axq.graph import Node
    from axq.resolve import Scope
    from axq.store import Store

Row = dict[str, Any]


class SweepInterrupted(Interrupted):
    """Ctrl-C during a sweep or an exploration; carries the rows finished so far and where it stopped."""

    def __init__(self, rows: list[Row], kind: str = "sweep", stopped: str | None = None, total: int | None = None):
        self.rows, self.kind, self.stopped = rows, kind, stopped
        super().__init__(interrupted_message(kind, rows, stopped, total))


def interrupted_message(kind: str, rows: list[Row], stopped: str | None, total: int | None) -> str:
    """Say where a run of jobs stopped and what is kept: `sweep interrupted at point 2/3 (n=2) after ...`."""
    noun = "configuration" if kind == "explore" else "point"
    done = f"{len(rows)} finished {noun}" + ("" if len(rows) == 1 else "s")
    if stopped is None:  # several ran at once (a cluster)
        return (f"{kind} interrupted after {done}: their entries are kept, the running {noun}s' are not; "
                "run it again to resume")
    at = f" at {noun} {len(rows) + 1}/{total}" if total else ""
    return (f"{kind} interrupted{at} ({stopped}) after {done}: their entries are kept, the interrupted {noun}'s "
            "is not; run it again to resume")


class Job(Protocol):
    """One point or configuration, as an executor runs it."""

    @property
    def label(self) -> str:
        """Name the job by its swept values: `framework=beta,batch_size=32`."""
        ...

    def run(self, store: Store, reporter: Reporter, scope: Scope | None = None) -> Row:
        """Build (or reuse) what the job needs in `store`, resolving with `scope` (else the store's); return its row."""
        ...

    def cached(self, store: Store, reporter: Reporter) -> Row | None:
        """Return the job's row if `store` holds all it needs (nothing would be built), else None."""
        ...

    def node(self, store: Store) -> Node | None:
        """Return the resolved entry whose needs (a GPU, a machine) the cluster must meet, if any."""
        ...

    def entries(self, row: Row) -> list[str]:
        """Return the names of the entries a row reads (what a node sends home)."""
        ...

    def imported(self, store: Store, row: Row) -> Row:
        """Return the row once the job's entries are imported into `store` (remember them for reruns)."""
        ...

    def failed(self, reason: str, log: str | None = None) -> Row:
        """Return the row of a job that could not run: the reason, and its log if any."""
        ...


class Executor(Protocol):
    """Runs jobs and returns one row per job, in order."""

    def run(self, jobs: Sequence[Job], store: Store, reporter: Reporter, kind: str = "sweep",
            on_row: Callable[[Row], None] | None = None) -> list[Row]:
        """Run every job; raise SweepInterrupted with the finished rows on Ctrl-C."""
        ...


PROGRESS = {"sweep": "sweep point", "explore": "explore configuration"}


class Sequential:
    """Build the jobs here, one after another."""

    def run(self, jobs: Sequence[Job], store: Store, reporter: Reporter, kind: str = "sweep",
            on_row: Callable[[Row], None] | None = None) -> list[Row]:
        """Run each job in this collection; a failed build is a row, Ctrl-C keeps the finished rows."""
        rows: list[Row] = []
        for number, job in enumerate(jobs, 1):
            reporter.log(f"{PROGRESS[kind]} {number}/{len(jobs)}: {job.label}")
            try:
                rows.append(job.run(store, reporter))
            except (KeyboardInterrupt, Interrupted):
                raise SweepInterrupted(rows, kind, job.label, len(jobs)) from None
            if on_row:
                on_row(rows[-1])
        return rows
