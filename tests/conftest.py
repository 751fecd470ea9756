"""Shared fixtures: a private work collection, the toy recipes, and ways to run axq."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from axq import cli
from axq.entry import forget_loaded_code
from axq.recipe import all_recipes, forget_computed_defaults

TESTS = Path(__file__).resolve().parent
TOY_RECIPES = TESTS / "recipes"
REPO = TESTS.parent


def pytest_configure(config: pytest.Config) -> None:
    """Let the axq processes tests start take Ctrl-C even when pytest itself was started in the background.

    A shell starts a background command (`make test &` in a script) with SIGINT ignored, and
    an ignored signal stays ignored in every child: the tests that send SIGINT to a real
    axq would then wait for ever. A handler, unlike SIG_IGN, is reset in a child at exec.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _fresh_recipe_cache():
    """Forget recipes loaded by another test (AXQ_ENTRIES differs between tests)."""
    all_recipes.cache_clear()
    forget_loaded_code()
    forget_computed_defaults()
    yield
    all_recipes.cache_clear()
    forget_computed_defaults()


KEPT: set[int] = set()  # processes a fixture of wider scope started in a test and will stop itself


def keep(pids: Iterable[int]) -> None:
    """Say that these processes, started during a test, belong to a fixture of wider scope that stops them."""
    KEPT.update(pids)


@pytest.fixture(autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """Fail a test that leaves a process it started running, after killing it; the zygote stays.

    A gated axq that a failed test never released would hold the measurement lock, and the
    suite's later measured runs would wait for it for ever. The zygote (axq.zygote) is
    meant to outlive the call that started it, and so are the processes given to `keep`.
    """
    before = set(children())
    yield
    left = {pid: command for pid in set(children()) - before - KEPT
            if "axq.zygote" not in (command := command_of(pid))}
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"the test left these processes running (now killed): {left}"


def children() -> Iterator[int]:
    """Yield the pids of this process's live children (not zombies)."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")  # pid (name) state ppid ...
        except OSError:
            continue
        state, parent = rest.split()[:2]
        if int(parent) == me and state != "Z":
            yield int(head.split(" (", 1)[0])


def command_of(pid: int) -> str:
    """Return a process's command line ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
    except OSError:
        return ""


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """Point axq at an empty work collection and the toy recipes; return the collection."""
    collection = tmp_path / "wc"
    monkeypatch.setenv("AXQ_WORK_COLLECTION", str(collection))
    monkeypatch.setenv("AXQ_ENTRIES", str(TOY_RECIPES))
    return collection


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point axq at a work collection shared by one test module, with the shipped recipes only.

    Module-scoped: the digits chain (dataset, preprocessing, training) is built once per
    module that asks for it.
    """
    root = tmp_path_factory.mktemp("shared") / "wc"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AXQ_WORK_COLLECTION", str(root))
        patch.delenv("AXQ_ENTRIES", raising=False)
        yield root


@pytest.fixture
def gate(tmp_path) -> Path:
    """Make a directory with the `started` and `release` FIFOs of the toy_gate recipe."""
    directory = tmp_path / "gate"
    directory.mkdir()
    os.mkfifo(directory / "started")
    os.mkfifo(directory / "release")
    return directory


class Background:
    """The rest of the machine's CPU share over a stretch of a test (`with Background() as around:`).

    Quiet-run tests check that a run's own processes are never counted as other processes':
    the run, measured inside the stretch, must not report more of others' CPU than the test
    saw around it (a shared machine is rarely idle, so not zero), give or take MARGIN. The
    run's processes are the test's children, so the test does not count them as others' either.
    """

    MARGIN = 0.15

    def __enter__(self) -> Background:
        from axq import measure

        self.start = measure.sample()
        assert self.start is not None, "needs /proc"
        self.other: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        from axq import measure

        end = measure.sample()
        assert end is not None, "needs /proc"
        self.other, _ = measure.shares(self.start, end)

    def explains(self, report: dict) -> bool:
        """Return whether a run's measured share of others' CPU is no more than the background's."""
        assert self.other is not None, "the stretch has not ended"
        return report["other_cpu_share"] <= self.other + self.MARGIN


def axq_subprocess(*args: str, **kwargs) -> subprocess.Popen:
    """Start `python -m axq ARGS` as a real process (environment inherited)."""
    return subprocess.Popen([sys.executable, "-m", "axq", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def run_axq(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m axq ARGS` to completion."""
    return subprocess.run([sys.executable, "-m", "axq", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, check=False)


@pytest.fixture
def axq_cli(capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        all_recipes.cache_clear()
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# Files the official checker opens for one open-division scenario in the v6.1 layout:
# mlcommons/inference tools/submission/submission_checker (commit b66003e, 2026-08),
# constants.py PERFORMANCE_LOG_PATH, PERFORMANCE_SUMMARY_PATH, ACCURACY_LOG_PATH,
# ACCURACY_RESULT_PATH, ACCURACY_JSON_PATH, MEASUREMENTS_PATH, TEST01_PERF_PATH,
# TEST01_ACC_PATH, TEST04_PERF_PATH, SYSTEM_PATH, SRC_PATH, REQUIRED_MEASURE_FILES,
# REQUIRED_COMP_PER_FILES; plus TEST01's accuracy/ (compliance_check.py).
CHECKER_SCENARIO_FILES = (
    "performance/run_1/mlperf_log_summary.txt", "performance/run_1/mlperf_log_detail.txt",
    "accuracy/mlperf_log_detail.txt", "accuracy/mlperf_log_summary.txt", "accuracy/accuracy.txt",
    "accuracy/mlperf_log_accuracy.json", "measurements.json", "user.conf", "README.md",
    "TEST01/verify_accuracy.txt", "TEST01/verify_performance.txt",
    "TEST01/performance/run_1/mlperf_log_detail.txt", "TEST01/performance/run_1/mlperf_log_summary.txt",
    "TEST01/accuracy/accuracy.txt", "TEST01/accuracy/mlperf_log_accuracy.json",
    "TEST04/verify_performance.txt", "TEST04/performance/run_1/mlperf_log_detail.txt",
    "TEST04/performance/run_1/mlperf_log_summary.txt")


def checker_files(benchmark: str, scenario: str = "SingleStream") -> list[str]:
    """Return the files the checker opens for one scenario of `open/axq-ci`'s `ci-box` (v6.1 layout)."""
    return [f"open/axq-ci/results/ci-box/{benchmark}/{scenario}/{name}" for name in CHECKER_SCENARIO_FILES] + [
        "open/axq-ci/systems/ci-box.json", f"open/axq-ci/src/{benchmark}/README.md"]


# How the checker reads accuracy.txt (constants.py ACC_PATTERN and accuracy_check.py, b66003e):
# each line is re.match-ed against the benchmark's metric pattern and the hash line's.
CHECKER_PATTERNS = {"acc": r"^(?:\{\"accuracy|accuracy)[\": ]*=?\s*([\d\.]+).*",
                    "mAP": r".*(?:mAP=|'Total':)\s*([\d.]+)", "hash": r"^hash=([\w\d]+)$"}


def checker_reads(accuracy_txt: Path, metric: str) -> tuple[list[str], list[str]]:
    """Return the figures and the hashes the checker finds in an accuracy.txt, for metric `acc` or `mAP`."""
    import re

    lines = Path(accuracy_txt).read_text(encoding="utf-8").splitlines()
    found = [(re.match(CHECKER_PATTERNS[metric], line), re.match(CHECKER_PATTERNS["hash"], line)) for line in lines]
    return [m.group(1) for m, _ in found if m], [h.group(1) for _, h in found if h]
