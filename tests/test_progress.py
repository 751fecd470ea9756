"""Progress: a bar with rate and ETA on a terminal, timestamped lines otherwise, or nothing."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
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
        with reporter.capturing_output():
            warnings.warn("weights copied the slow way", UserWarning, stacklevel=1)
        reporter.log_file = None
    assert stream.getvalue() == "" and warnings.showwarning is before  # restored afterwards
    logged = (tmp_path / "build.log").read_text()
    pattern = r"\[\d\d:\d\d:\d\d\] warning: UserWarning: weights copied the slow way \(.*test_progress.py:\d+\)\n$"
    assert re.match(pattern, logged), logged


def test_what_a_library_writes_to_stderr_in_a_build_goes_to_the_log_and_after_it_to_the_screen(tmp_path, monkeypatch):
    # torch's log handler is made by `import torch`, during a build, and keeps the stream it
    # found: its lines belong in that build's log, and after the build on the screen again.
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    reporter = Reporter("quiet", stream=io.StringIO())
    library = logging.getLogger("axq-test-library")
    monkeypatch.setattr(library, "propagate", False)
    with open(tmp_path / "build.log", "w") as log:
        reporter.log_file = log
        with reporter.capturing_output():
            assert sys.stderr is not screen
            handler = logging.StreamHandler()  # takes sys.stderr as it is now
            library.addHandler(handler)
            library.warning("No CUDA runtime is found")
            sys.stderr.write("half a ")
            sys.stderr.write("line")  # logged when the build ends
        reporter.log_file = None
    try:
        assert sys.stderr is screen and screen.getvalue() == ""
        library.warning("said after the build")
    finally:
        library.removeHandler(handler)
    assert screen.getvalue() == "said after the build\n"
    logged = (tmp_path / "build.log").read_text().splitlines()
    assert [line[11:] for line in logged] == ["No CUDA runtime is found", "half a line"]


def test_a_reporter_made_during_a_build_writes_its_screen_lines_to_the_screen_once(tmp_path, monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    outer = Reporter("quiet", stream=io.StringIO())
    with open(tmp_path / "build.log", "w") as log:
        outer.log_file = log
        with outer.capturing_output():
            inner = Reporter("lines")  # its screen is sys.stderr: the build's stream
            inner.log("inner progress")
        outer.log_file = None
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] inner progress\n", screen.getvalue())
    assert (tmp_path / "build.log").read_text() == ""


def test_details_go_to_the_log_and_to_the_screen_only_when_verbose():
    for verbose, on_screen in ((False, False), (True, True)):
        stream, log = io.StringIO(), io.StringIO()
        reporter = Reporter(stream=stream, verbose=verbose)
        reporter.log_file = log
        reporter.detail("MLPerf Results Summary")
        reporter.log("result: VALID")
        assert "MLPerf Results Summary" in log.getvalue() and "result: VALID" in log.getvalue()
        assert ("MLPerf Results Summary" in stream.getvalue()) is on_screen and "result: VALID" in stream.getvalue()
    quiet = Reporter("quiet", stream=io.StringIO(), verbose=True)
    quiet.detail("MLPerf Results Summary")
    assert quiet.stream.getvalue() == ""


class WatchedTerminal(FakeTerminal):
    """A terminal that sets an event once what was written matches a pattern."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern, self.seen = re.compile(pattern), threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.pattern.search(self.getvalue()):
            self.seen.set()
        return written


def test_a_timed_step_shows_elapsed_against_expected_time():
    terminal = WatchedTerminal(r"LoadGen Server test: .* 0\.[1-9]/4 s expected")
    with Reporter(stream=terminal).timed("LoadGen Server test", 4.0):
        assert "0.0/4 s expected" in terminal.getvalue()
        assert terminal.seen.wait(10)  # the bar moves by itself, 4 times a second
    pipe = io.StringIO()
    with Reporter(stream=pipe).timed("LoadGen Server test", 4.0):
        pass
    lines = pipe.getvalue().splitlines()
    assert lines[0].endswith("LoadGen Server test: expected to take about 4 s")
    assert re.search(r"LoadGen Server test: done in 0\.\d s$", lines[1]) and len(lines) == 2
    verbose = io.StringIO()
    with Reporter(stream=verbose, verbose=True).timed("LoadGen Server test", 4.0):
        pass
    assert verbose.getvalue() == ""  # the details say what happens
