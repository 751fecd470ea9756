"""One measurement at a time per machine, and contention from other processes detected.

Every test uses a private lock file (AXQ_MEASURE_LOCK or `lock=`), never the machine's.
Processes say when they have reached a point by printing a line; timeouts are bounded.

The machine these tests run on is shared (two cores, other test suites running beside
ours), so "quiet" cannot be promised: the contention tests compare against QUIET_THRESHOLD
(25% of the machine), which a busy neighbour (a spinning process: one core of two, 50%)
clearly exceeds, and the quiet case tries a few windows before it gives up as "machine
busy". How the shares are computed is tested exactly on made-up counters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from axq import measure
from axq.measure import Sample, measurement
from tests.conftest import REPO, Background
from tests.processes import lines_of, wait_for_line
from tests.test_process import release, start_measured_build, wait_started

QUIET_THRESHOLD = 0.25
needs_proc = pytest.mark.skipif(not os.path.isfile("/proc/stat"), reason="needs /proc")

# Measure argv[1]: print what the lock logs, "measuring" once inside, wait for a line on
# stdin, then print the report as JSON. With argv[2] = seconds, spin a child of our own for
# that long inside the measurement first.
MEASURER = """
import json, subprocess, sys
from axq.measure import measurement
with measurement(sys.argv[1], log=lambda line: print(line, flush=True), threshold=float(sys.argv[3])) as m:
    print("measuring", flush=True)
    if float(sys.argv[2]):
        subprocess.run([sys.executable, "-c", sys.argv[4], sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
    sys.stdin.readline()
print(json.dumps(m.report), flush=True)
"""

# Spin for argv[1] seconds of wall time, then exit by itself.
BUSY = """
import sys, time
print("spinning", flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    pass
"""

# Use 0.3 s of CPU, print the CPU seconds used, wait for a line on stdin.
SPIN_CPU = """
import time
t = time.process_time()
while time.process_time() < t + 0.3:
    pass
print(time.process_time(), flush=True)
input()
"""


def start(argv: list[str], lock: Path) -> subprocess.Popen:
    """Start a Python snippet with axq importable and the private measurement lock."""
    env = {**os.environ, "PYTHONPATH": str(REPO), measure.LOCK_ENV: str(lock)}
    return subprocess.Popen([sys.executable, "-c", *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)


def start_measurer(label: str, lock: Path, own_spin_s: float = 0, threshold: float = QUIET_THRESHOLD
                   ) -> subprocess.Popen:
    """Start MEASURER for `label`."""
    return start([MEASURER, label, str(own_spin_s), str(threshold), BUSY], lock)


def line(proc: subprocess.Popen) -> str:
    """Read the next line a process prints."""
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def finish(proc: subprocess.Popen) -> dict:
    """Let a measurer leave its measurement; return its report."""
    out, _ = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the lock


def test_two_processes_take_turns_and_the_second_says_what_it_waits_for(tmp_path):
    lock = tmp_path / "locks" / "measure.lock"
    first = start_measurer("toy-a (collection one)", lock)
    assert line(first) == "measuring"
    second = start_measurer("toy-b (collection two)", lock)
    waiting = line(second)
    assert waiting.startswith(f"waiting for the measurement lock: pid {first.pid} measuring toy-a (collection one)")
    assert measure.holder(str(lock))["pid"] == first.pid
    a = finish(first)
    assert line(second) == "measuring"
    b = finish(second)
    assert a["end"] <= b["start"]
    assert b["waited_s"] > 0 and a["waited_s"] < b["waited_s"]
    assert measure.holder(str(lock)) is None  # released: nobody named as holder


def test_a_nested_measurement_does_not_wait(tmp_path):
    lock = str(tmp_path / "measure.lock")
    with measurement("outer", lock=lock) as outer, measurement("inner", lock=lock) as inner:
        assert measure.holder(lock)["label"] == "outer"
    assert inner.report["waited_s"] == 0
    assert outer.report["start"] <= inner.report["start"] <= inner.report["end"] <= outer.report["end"]


def test_threads_of_one_process_take_turns(tmp_path):
    lock = str(tmp_path / "measure.lock")
    inside, let_go, second_waits = threading.Event(), threading.Event(), threading.Event()
    reports: dict[str, dict | None] = {}
    logged: list[str] = []

    def log(text: str) -> None:
        logged.append(text)
        second_waits.set()

    def first() -> None:
        with measurement("first", lock=lock) as m:
            inside.set()
            let_go.wait(timeout=30)
        reports["first"] = m.report

    def second() -> None:
        with measurement("second", log=log, lock=lock) as m:
            pass
        reports["second"] = m.report

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert inside.wait(timeout=30)
    threads[1].start()
    waited = second_waits.wait(timeout=30)
    let_go.set()
    for thread in threads:
        thread.join(timeout=30)
    assert waited and logged[0].startswith("waiting for the measurement lock: another thread of this process")
    first_report, second_report = reports["first"], reports["second"]
    assert first_report and second_report and first_report["end"] <= second_report["start"]


def test_the_lock_lives_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.setenv(measure.LOCK_ENV, str(tmp_path / "elsewhere.lock"))
    assert measure.lock_path() == str(tmp_path / "elsewhere.lock")
    monkeypatch.delenv(measure.LOCK_ENV)
    assert measure.lock_path() == "/tmp/axq-measure.lock"


# ----------------------------------------------------------------------------- contention


def counters(busy: int, own: int, total: int = 1000) -> Sample:
    return Sample(time=0.0, machine_busy=busy, machine_total=total, own=own, loadavg=(0.0, 0.0, 0.0))


@pytest.mark.parametrize(("busy", "own", "other_share", "own_share"), [
    (0, 0, 0.0, 0.0),
    (530, 500, 0.03, 0.5),
    (560, 500, 0.06, 0.5),
    (1000, 0, 1.0, 0.0),
    (480, 500, 0.0, 0.5),  # counters read a tick apart: never a negative share
])
def test_shares_of_the_machine(busy, own, other_share, own_share):
    other, ours = measure.shares(counters(0, 0, 0), counters(busy, own))
    assert (other, ours) == pytest.approx((other_share, own_share))


def test_contention_warning_names_the_entry_and_the_share():
    report = {"contended": True, "other_cpu_share": 0.234}
    assert measure.contention_warning("toy-1", report) == (
        "toy-1 was measured while the machine was busy: 23% of CPU used by other processes")
    assert measure.contention_warning("toy-1", {"contended": False, "other_cpu_share": 0.01}) is None


@needs_proc
def test_cpu_of_our_children_counts_as_ours_alive_and_reaped():
    spin = SPIN_CPU
    start_sample = measure.sample()
    child = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child_ticks = float(line(child)) * os.sysconf("SC_CLK_TCK")
    alive = measure.sample()
    child.communicate("\n", timeout=30)
    reaped = measure.sample()
    assert start_sample and alive and reaped
    assert alive.own - start_sample.own >= 0.9 * child_ticks - 2
    assert reaped.own - start_sample.own >= 0.9 * child_ticks - 2


@needs_proc
def test_a_busy_neighbour_makes_a_measurement_contended(tmp_path):
    lock = tmp_path / "measure.lock"
    measurer = start_measurer("beside-a-busy-loop", lock, threshold=measure.DEFAULT_THRESHOLD)
    assert line(measurer) == "measuring"
    neighbour = start([BUSY, "1.5"], lock)
    assert line(neighbour) == "spinning"
    neighbour.communicate(timeout=60)
    report = finish(measurer)
    assert report["contended"] is True
    assert report["other_cpu_share"] > QUIET_THRESHOLD
    assert report["threshold"] == measure.DEFAULT_THRESHOLD
    assert len(report["loadavg"]["start"]) == 3 and report["end"] > report["start"]


@needs_proc
def test_a_quiet_measurement_is_not_contended_though_our_own_child_spins(tmp_path):
    reports = []
    for attempt in range(2):  # a burst of someone else's work during one attempt is not our bug
        with Background() as around:
            measurer = start_measurer(f"quiet-{attempt}", tmp_path / "measure.lock", own_spin_s=0.6, threshold=0.95)
            assert line(measurer) == "measuring"
            reports.append(finish(measurer))
        assert reports[-1]["own_cpu_share"] > 0.15  # our child's spinning is ours, not another's
        if around.explains(reports[-1]):
            assert not reports[-1]["contended"]
            return
    pytest.fail("others' share above the background twice: " + ", ".join(
        f"other {r['other_cpu_share']}, background {around.other}" for r in reports))


# ----------------------------------------------------------------------------- through axq


@pytest.fixture
def measure_env(work: Path, tmp_path: Path) -> dict[str, str]:
    """Return the environment for axq processes: toy recipes, a private measurement lock."""
    return {**os.environ, measure.LOCK_ENV: str(tmp_path / "measure.lock")}






def manifest_of(collection: Path) -> dict:
    """Return the manifest of the one toy_measure entry of a work collection."""
    (directory,) = collection.glob("toy_measure*")
    return json.loads((directory / "manifest.json").read_text())


@needs_proc
def test_builds_in_two_work_collections_take_turns_and_the_second_logs_that_it_waited(gate, measure_env, tmp_path):
    other_gate = tmp_path / "gate2"
    other_gate.mkdir()
    for fifo in ("started", "release"):
        os.mkfifo(other_gate / fifo)
    one, two = tmp_path / "wc1", tmp_path / "wc2"
    first = start_measured_build(gate, env={**measure_env, "AXQ_WORK_COLLECTION": str(one)})
    wait_started(gate, first)
    second = start_measured_build(other_gate, env={**measure_env, "AXQ_WORK_COLLECTION": str(two)})
    waiting = wait_for_line(lines_of(second.stderr), "waiting for the measurement lock")
    assert f"pid {first.pid} measuring toy_measure_measured-" in waiting
    release(gate)
    assert first.communicate(timeout=60)[0].strip() in ("true", "false") and first.returncode == 0
    wait_started(other_gate, second)
    release(other_gate)
    assert second.wait(timeout=60) == 0
    a, b = manifest_of(one)["measurement"], manifest_of(two)["measurement"]
    assert a["end"] <= b["start"] and b["waited_s"] > 0
    assert "waiting for the measurement lock: pid" in (next(two.glob("toy_measure*")) / "build.log").read_text()


@needs_proc
def test_a_build_measured_beside_a_busy_process_is_flagged_and_warns(gate, measure_env, work):
    build = start_measured_build(gate, "spin_s=0", env=measure_env)
    wait_started(gate, build)
    neighbour = start([BUSY, "1.0"], Path(measure_env[measure.LOCK_ENV]))
    assert line(neighbour) == "spinning"
    neighbour.communicate(timeout=60)
    release(gate)
    out, err = build.communicate(timeout=60)
    assert build.returncode == 0, err
    assert out.strip() == "true"
    report = manifest_of(work)["measurement"]
    assert report["contended"] is True and report["other_cpu_share"] > QUIET_THRESHOLD
    name = manifest_of(work)["name"]
    percent = round(100 * report["other_cpu_share"])
    assert (f"axq: warning: {name} was measured while the machine was busy: {percent}% of CPU used by other "
            "processes") in err


@needs_proc
def test_a_quiet_build_is_not_flagged(work, measure_env, monkeypatch, capsys):
    import axq

    monkeypatch.setenv(measure.LOCK_ENV, measure_env[measure.LOCK_ENV])
    reports = []
    for attempt in range(2):  # a burst of someone else's work during one attempt is not our bug
        with Background() as around:
            entry = axq.byquery(f"measured,spin_s=0.5,contention_threshold=0.95,n={attempt}")
        reports.append(entry.manifest["measurement"])
        assert reports[-1]["own_cpu_share"] > 0.15  # the measured child is ours
        if around.explains(reports[-1]):
            assert entry.get("contended") is False
            assert "axq: warning" not in capsys.readouterr().err
            return
    pytest.fail("others' share above the background twice: " + ", ".join(
        f"other {r['other_cpu_share']}, background {around.other}" for r in reports))
