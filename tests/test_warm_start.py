"""Warm starts (axq.zygote): a script forked from a zygote runs as `python script` would.

First the kernel's zygote with a light module list (no torch): what the fork is (argv,
directory, sys.path[0], group, parent, output, exit status), that its CPU time counts as
ours, that stop_children stops it, that a changed environment gets a new zygote, and that
kill -9 of its parent leaves nothing behind. Then real LoadGen runs on digits through the
real kernel (the `collection` fixture), warm by default: the same accuracy as a cold run,
one zygote for two runs that each load mlperf.conf themselves, a failing child's reason
(the harness's error.json),
a timeout, kill -9 of a real `axq` and AXQ_WARM_START=0. Real processes, bounded waits,
no sleeps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import axq
from axq import measure, process, zygote
from axq.entry import Entry, child_environment, use_libraries
from axq.errors import BuildError
from tests.conftest import REPO
from tests.processes import gone, watching

use_libraries()

from axq_mlperf.child import WARM_MODULES  # noqa: E402
from tests.test_loadgen_program import (  # noqa: E402
    SERVER,
    decoded,
    harness_child,
    in_the_middle,
    lock_env,  # noqa: F401 (a fixture)
    run,
    start_run,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"),
                                reason="warm starts are Linux only")

LIGHT = ("json",)  # a zygote that starts in milliseconds
SCRIPT = """
import json, os, sys
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "pid": os.getpid(),
                  "ppid": os.getppid(), "pgid": os.getpgid(0), "name": open("/proc/self/comm").read().strip(),
                  "stdin": sys.stdin.read()}), flush=True)
print("on stderr", file=sys.stderr, flush=True)
if sys.argv[1] == "exit3":
    os._exit(3)
if sys.argv[1] == "raise":
    raise RuntimeError("on purpose")
if sys.argv[1] == "spin":
    import time
    end = time.process_time() + float(sys.argv[2])
    while time.process_time() < end:
        pass
if sys.argv[1] == "wait":
    print("waiting", flush=True)
    sys.stdin = open(sys.argv[2])
    sys.stdin.read()
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "scripts" / "child.py"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    return path


def light_zygote() -> zygote.Zygote:
    return zygote.ready(LIGHT, {**os.environ, "PYTHONPATH": str(REPO)})


def parent_of(pid: int) -> int:
    return measure.process_table()[pid][0]


def finished(child: zygote.WarmChild) -> tuple[list[str], int]:
    """Return the child's output lines and its exit status."""
    lines = child.stdout.read().splitlines()
    return lines, child.wait(timeout=60)


# ----------------------------------------------------------------------------- the kernel's zygote


def test_a_fork_is_the_script_run_as_python_would_run_it(script: Path, tmp_path: Path) -> None:
    import json

    warm = light_zygote()
    child = warm.start(str(script), ["ok", "two words"], tmp_path)
    lines, code = finished(child)
    seen = json.loads(lines[0])
    assert code == 0 and lines[1] == "on stderr"
    assert seen["argv"] == [str(script), "ok", "two words"] and seen["cwd"] == str(tmp_path)
    assert seen["path0"] == str(script.parent) and seen["stdin"] == ""
    assert seen["pid"] == seen["pgid"] == child.pid != os.getpgid(0)  # it leads its own group
    assert seen["ppid"] == warm.process.pid and seen["name"] == "child.py"


@pytest.mark.parametrize(("how", "status", "last"), [("exit3", 3, "on stderr"),
                                                     ("raise", 1, "RuntimeError: on purpose")])
def test_a_fork_exits_with_the_scripts_status(script: Path, tmp_path: Path, how: str, status: int, last: str) -> None:
    lines, code = finished(light_zygote().start(str(script), [how], tmp_path))
    assert code == status and lines[-1] == last
    if how == "raise":  # the traceback starts at the script, as `python script` prints it
        assert lines[2:4] == ["Traceback (most recent call last):", f'  File "{script}", line 10, in <module>']


def test_a_forks_cpu_time_counts_as_ours(script: Path, tmp_path: Path) -> None:
    warm = light_zygote()
    before = measure.tree_ticks(os.getpid())
    _, code = finished(warm.start(str(script), ["spin", "0.6"], tmp_path))
    spent = measure.tree_ticks(os.getpid()) - before
    assert code == 0 and spent >= 0.5 * os.sysconf("SC_CLK_TCK")  # reaped by the zygote, in its cutime


def test_a_fork_is_registered_and_stop_children_stops_it(script: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    child = light_zygote().start(str(script), ["wait", str(fifo)], tmp_path)
    assert [child.stdout.readline() for _ in range(3)][-1] == "waiting\n"
    assert child in process.live_children() and child.poll() is None
    with watching(child.pid) as pidfd:
        assert process.stop_children(grace_s=0.5, children=[child]) == [child.pid]
        assert gone(pidfd, 0) and child.returncode == -15
    assert child not in process.live_children()


def test_a_changed_environment_gets_a_new_zygote_and_the_old_one_stops() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = zygote.ready(LIGHT, env)
    assert zygote.ready(LIGHT, env) is first
    with watching(first.process.pid) as pidfd:
        second = zygote.ready(LIGHT, {**env, "AXQ_TEST_VALUE": "changed"})
        assert second.process.pid != first.process.pid and gone(pidfd, 5.0)


def test_a_zygote_that_cannot_import_its_modules_is_unavailable() -> None:
    with pytest.raises(zygote.Unavailable, match="No module named 'no_such_module_here'"):
        zygote.ready(("no_such_module_here",), {**os.environ, "PYTHONPATH": str(REPO)})


def test_a_dead_zygote_is_unavailable_and_replaced(script: Path, tmp_path: Path) -> None:
    dead = light_zygote()
    with watching(dead.process.pid) as pidfd:
        os.kill(dead.process.pid, 9)
        assert gone(pidfd, 5.0)
    with pytest.raises(zygote.Unavailable, match="the zygote"):
        dead.start(str(script), ["ok"], tmp_path)
    fresh = light_zygote()
    assert fresh is not dead and finished(fresh.start(str(script), ["ok"], tmp_path))[1] == 0


@pytest.mark.parametrize(("value", "on"), [("0", False), ("off", False), ("1", True), (None, True)])
def test_the_switch(monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool) -> None:
    if value is None:
        monkeypatch.delenv(zygote.WARM_ENV, raising=False)
    else:
        monkeypatch.setenv(zygote.WARM_ENV, value)
    assert zygote.enabled() is on


PARENT = textwrap.dedent("""
    import os, sys
    from axq import zygote
    warm = zygote.ready(("json",), dict(os.environ))
    child = warm.start(sys.argv[1], ["wait", sys.argv[2]], os.getcwd())
    child.stdout.readline(), child.stdout.readline(), child.stdout.readline()
    print(warm.process.pid, child.pid, flush=True)
    sys.stdin.read()
""")


def test_kill_9_of_the_parent_leaves_no_zygote_and_no_fork(script: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(script), str(fifo)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert parent.stdout is not None
    zygote_pid, child_pid = map(int, parent.stdout.readline().split())
    with watching(zygote_pid) as zygote_fd, watching(child_pid) as child_fd:
        parent.kill()
        parent.communicate(timeout=30)
        assert gone(zygote_fd, 2.0) and gone(child_fd, 2.0)


# ----------------------------------------------------------------------------- real LoadGen runs


def warm_line(entry: Entry) -> tuple[int, int]:
    """Return (child pid, zygote pid) from the run's log line saying it started warm."""
    found = re.search(r"LoadGen child pid (\d+): started warm, forked by zygote pid (\d+)",
                      (entry.path / "build.log").read_text())
    assert found, "the run did not start warm"
    return int(found[1]), int(found[2])


def log_of(error: BaseException) -> str:
    """Return the build log a failed build's error names."""
    return Path(str(error).rsplit("log: ", 1)[1].strip()).read_text()


def test_a_warm_run_scores_as_a_cold_one(collection: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(zygote.WARM_ENV, "0")
    cold = run("loadgen_mode=AccuracyOnly")
    assert "started warm" not in (cold.path / "build.log").read_text()
    cold_score, cold_predictions = cold.get("accuracy"), decoded(cold)
    axq.remove(cold.name, work_collection=collection)
    monkeypatch.delenv(zygote.WARM_ENV)
    warm = run("loadgen_mode=AccuracyOnly")
    warm_line(warm)
    assert warm.get("accuracy") == cold_score and decoded(warm) == cold_predictions


def test_two_runs_share_a_zygote_and_each_loads_mlperf_conf(collection: Path) -> None:
    offline = run("loadgen_mode=PerformanceOnly")
    server = run(f"{SERVER},loadgen_mode=PerformanceOnly")
    (first, keeper), (second, same) = warm_line(offline), warm_line(server)
    assert keeper == same and first != second and keeper not in (first, second)
    assert parent_of(keeper) == os.getpid()
    offline_qps = offline.results["calibrated"]["target_qps"]
    for entry, scenario, qps in ((offline, "Offline", offline_qps), (server, "Server", 1000)):
        summary = entry.get("summary")
        assert entry.results["valid"] is True and summary["Scenario"] == scenario
        assert abs(summary["target_qps"] - qps) < 1  # its own user.conf
        assert summary["qsl_rng_seed"] != 0  # mlperf.conf's seed: LoadGen read it in this run's process


def test_the_zygote_is_ready_before_the_measurement_starts(collection: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AXQ_TEST_FRESH_ZYGOTE", str(os.getpid()))  # another environment: a new zygote
    entry = run("loadgen_mode=PerformanceOnly,loadgen_duration_s=0.31")
    _, keeper = warm_line(entry)
    warm = zygote.ready(WARM_MODULES, child_environment())
    assert warm.process.pid == keeper and warm.ready_at < entry.manifest["measurement"]["start"]


def test_a_run_starts_cold_when_the_zygote_cannot_start(collection: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from axq_mlperf import child

    monkeypatch.setattr(child, "WARM_MODULES", ("no_such_runtime",))
    entry = run("loadgen_mode=PerformanceOnly,loadgen_duration_s=0.32")
    log = (entry.path / "build.log").read_text()
    assert "starting the LoadGen child cold: the zygote did not start: ModuleNotFoundError: No module named" in log
    assert "started warm" not in log and entry.results["valid"] is True


def test_a_failing_warm_childs_reason_reaches_the_user(collection: Path) -> None:
    reason = "LoadGen test failed: num_instances=1 x 4096 threads needs 4096 cores"  # from the harness's error.json
    with pytest.raises(BuildError, match=reason) as failed:
        run("loadgen_mode=PerformanceOnly,num_threads=4096,pin_cores=true")
    assert "started warm" in log_of(failed.value)


def test_a_timeout_kills_a_warm_child(collection: Path) -> None:
    with pytest.raises(BuildError, match=re.escape("LoadGen test killed after loadgen_timeout_s=1.5")) as failed:
        run("loadgen_mode=PerformanceOnly,loadgen_duration_s=30,loadgen_timeout_s=1.5")
    assert "started warm" in log_of(failed.value)
    assert all(not isinstance(child, zygote.WarmChild) for child in process.live_children())


def test_kill_9_of_axq_leaves_no_zygote_and_no_run(lock_env: dict[str, str]) -> None:  # noqa: F811
    build = start_run(lock_env, "loadgen_duration_s=30")
    _, child = in_the_middle(build)
    keeper = parent_of(child)
    assert keeper != build.pid  # forked by the zygote, a child of axq
    with watching(child) as child_fd, watching(keeper) as zygote_fd:
        build.kill()
        build.wait(timeout=30)
        assert gone(zygote_fd, 2.0) and gone(child_fd, 2.0)


def test_warm_start_off_runs_python_harness(lock_env: dict[str, str]) -> None:  # noqa: F811
    build = start_run({**lock_env, zygote.WARM_ENV: "0"}, "loadgen_duration_s=30")
    _, child = in_the_middle(build)
    with watching(child) as pidfd:
        assert harness_child(build.pid) == child
        assert parent_of(child) == build.pid
        assert b"harness.py" in Path(f"/proc/{child}/cmdline").read_bytes()
        build.kill()
        build.wait(timeout=30)
        assert gone(pidfd, 2.0)
