"""The executor seam: jobs in, rows out, in order; Ctrl-C keeps the finished rows and says where it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from axq.errors import Interrupted
from axq.executor import Sequential, SweepInterrupted, interrupted_message
from axq.progress import Reporter


@dataclass
class Counting:
    """A job that returns its number as its row (or is interrupted), and records where it ran."""

    number: int
    interrupt: bool = False
    ran_in: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"n={self.number}"

    def run(self, store: Any, reporter: Reporter, scope: Any = None) -> dict[str, Any]:
        if self.interrupt:
            raise KeyboardInterrupt
        self.ran_in.append(store)
        return {"n": self.number}

    def cached(self, store: Any, reporter: Reporter) -> dict[str, Any] | None:
        return None

    def node(self, store: Any) -> None:
        return None

    def entries(self, row: dict[str, Any]) -> list[str]:
        return []

    def imported(self, store: Any, row: dict[str, Any]) -> dict[str, Any]:
        return row

    def failed(self, reason: str, log: str | None = None) -> dict[str, Any]:
        return {"n": self.number, "error": reason}


def test_sequential_runs_every_job_here_in_order_and_passes_each_row_on():
    seen: list[dict] = []
    jobs = [Counting(n) for n in (3, 1, 2)]
    lines: list[str] = []
    reporter = Reporter("quiet")
    reporter.log = lines.append  # type: ignore[method-assign]
    rows = Sequential().run(jobs, "the store", reporter, "sweep", seen.append)
    assert rows == seen == [{"n": 3}, {"n": 1}, {"n": 2}]
    assert all(job.ran_in == ["the store"] for job in jobs)
    assert lines == ["sweep point 1/3: n=3", "sweep point 2/3: n=1", "sweep point 3/3: n=2"]


def test_ctrl_c_keeps_the_finished_rows_and_names_the_job_it_stopped_in():
    jobs = [Counting(1), Counting(2, interrupt=True), Counting(3)]
    with pytest.raises(SweepInterrupted) as stopped:
        Sequential().run(jobs, None, Reporter("quiet"), "explore")
    assert isinstance(stopped.value, Interrupted) and stopped.value.exit_code == 130
    assert stopped.value.rows == [{"n": 1}] and jobs[2].ran_in == []
    assert str(stopped.value) == ("explore interrupted at configuration 2/3 (n=2) after 1 finished configuration: "
                                  "their entries are kept, the interrupted configuration's is not; "
                                  "run it again to resume")


def test_an_interrupted_cluster_says_the_running_points_are_not_kept():
    message = interrupted_message("sweep", [{}, {}], None, None)
    assert message == ("sweep interrupted after 2 finished points: their entries are kept, the running points' "
                       "are not; run it again to resume")
