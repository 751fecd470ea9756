"""Progress: a bar with rate and ETA on a terminal, timestamped lines otherwise, or nothing."""

from __future__ import annotations

import io
import re
import warnings

from axq.progress import Reporter


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_rate():
    stream = FakeTerminal()
    reporter = Reporter(stream=stream)
    assert reporter.mode == "bar"
    assert list(reporter.progress(range(50), desc="training")) == list(range(50))
    assert re.search(r"\rtraining:\s+0%\|\s*\| 0/50 \[.*it/s\]", stream.getvalue())
    assert "training: done 50" in stream.getvalue()


def test_pipe_gets_timestamped_lines_every_tenth():
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    assert reporter.mode == "lines"
    assert sum(reporter.progress(range(100), desc="preprocessing")) == 4950
    lines = stream.getvalue().splitlines()
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] preprocessing: ", line) for line in lines)
    assert len(lines) == 11 and "100/100 done" in lines[-1]


def test_quiet_prints_nothing_but_still_logs(tmp_path):
    stream = io.StringIO()
    reporter = Reporter("quiet", stream=stream)
    with open(tmp_path / "build.log", "w") as log:
        reporter.log_file = log
        list(reporter.progress(range(10), desc="step"))
        reporter.log("hello")
    assert stream.getvalue() == ""
    assert "hello" in (tmp_path / "build.log").read_text()


def test_warnings_raised_while_capturing_go_to_the_log_not_a_quiet_screen(tmp_path):
    stream = io.StringIO()
    reporter = Reporter("quiet", stream=stream)
    before = warnings.showwarning
    with open(tmp_path / "build.log", "w") as log:
        reporter.log_file = log
        with reporter.capturing_warnings():
            warnings.warn("weights copied the slow way", UserWarning, stacklevel=1)
        reporter.log_file = None
    assert stream.getvalue() == "" and warnings.showwarning is before  # restored afterwards
    logged = (tmp_path / "build.log").read_text()
    pattern = r"\[\d\d:\d\d:\d\d\] warning: UserWarning: weights copied the slow way \(.*test_progress.py:\d+\)\n$"
    assert re.match(pattern, logged), logged
