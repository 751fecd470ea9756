"""Children started with axq.process.spawn never outlive their parent, however it ends.

Real processes throughout. A test knows a process has started from a line it prints, and
that one has ended from its pidfd (readable once the process is gone), always with a
bounded timeout: no sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from axq import process
from tests.conftest import REPO
from tests.processes import gone, lines_of, wait_for_line, watching

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")

# A child that says it is ready, then waits for a signal; on SIGTERM it says so and exits.
CHILD = """
import signal, sys
def term(signum, frame):
    print("child got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    signal.pause()
"""

# A parent that spawns CHILD (sharing its stdout), says the child's pid, then waits on stdin.
PARENT = """
import subprocess, sys
from axq import process
process.install_signal_handlers()
child = process.spawn([sys.executable, "-c", sys.argv[1]], stdin=subprocess.DEVNULL)
print("child", child.pid, flush=True)
try:
    sys.stdin.read()
except KeyboardInterrupt as interruption:
    stopped = process.stop_children()
    print("interrupted", type(interruption).__name__, stopped == [child.pid], flush=True)
"""


def start_parent() -> tuple[subprocess.Popen, int]:
    """Start PARENT; return it and its child's pid once both are ready."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    assert parent.stdout is not None
    lines = sorted(parent.stdout.readline().split() for _ in range(2))
    assert lines[1] == ["ready"], lines
    return parent, int(lines[0][1])




@pytest.fixture
def parent_and_child() -> Iterator[tuple[subprocess.Popen, int, int]]:
    """Yield PARENT, its child's pid and a pidfd of that child; kill both if a test left them."""
    parent, pid = start_parent()
    with watching(pid) as pidfd:
        yield parent, pid, pidfd
    parent.kill()
    parent.communicate()




def test_child_dies_within_2s_of_kill_9_of_its_parent(parent_and_child):
    parent, _, pidfd = parent_and_child
    parent.kill()
    parent.wait(timeout=10)
    assert gone(pidfd, 2.0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_to_parent_alone_stops_the_child_before_the_parent_reports(parent_and_child, signum):
    parent, _, pidfd = parent_and_child
    parent.send_signal(signum)
    out, _ = parent.communicate(timeout=10)
    expected = "KeyboardInterrupt" if signum == signal.SIGINT else "Terminated"
    assert f"interrupted {expected} True" in out
    assert "child got SIGTERM" in out.split("interrupted")[0]  # stopped (gently) before the report
    assert gone(pidfd, 0)


def test_normal_exit_stops_children_through_atexit(parent_and_child):
    parent, _, pidfd = parent_and_child
    out, _ = parent.communicate("", timeout=10)  # end of stdin: PARENT returns normally
    assert "child got SIGTERM" in out  # SIGTERM comes from atexit; the parent-death signal is SIGKILL
    assert gone(pidfd, 2.0)


def echo_child() -> subprocess.Popen:
    """Spawn a child that echoes each line of stdin, in its own process group."""
    code = "import sys\nfor line in sys.stdin:\n    print(line.strip(), flush=True)"
    return process.spawn([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def talk(child: subprocess.Popen, word: str) -> str:
    """Send a line to an echo child and return its answer."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(word + "\n")
    child.stdin.flush()
    return child.stdout.readline().strip()


def test_a_child_spawned_from_a_thread_outlives_that_thread():
    made: list[subprocess.Popen] = []
    worker = threading.Thread(target=lambda: made.append(echo_child()))
    worker.start()
    worker.join(timeout=30)
    (child,) = made
    try:
        assert talk(child, "still here") == "still here"  # the parent-death signal did not fire
        assert child.poll() is None
    finally:
        process.stop_children(children=[child])


def test_children_lead_their_own_process_group_and_are_registered():
    child = echo_child()
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
        assert child in process.live_children()
    finally:
        assert process.stop_children(children=[child]) == [child.pid]
    assert child not in process.live_children()


@pytest.mark.parametrize(("ignores_term", "returncode"), [(False, -signal.SIGTERM), (True, -signal.SIGKILL)])
def test_stop_children_terms_then_kills(ignores_term, returncode):
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignores_term else ""
    code = f"import signal, sys\n{ignore}print('ready', flush=True)\nsys.stdin.read()"
    child = process.spawn([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    assert process.stop_children(grace_s=0.5, children=[child]) == [child.pid]
    assert child.returncode == returncode


def test_spawn_refuses_to_be_told_how_to_start_the_child():
    with pytest.raises(TypeError, match="preexec_fn"):
        process.spawn([sys.executable, "-c", "pass"], process_group=None)


# ----------------------------------------------------------------------------- through axq

# `python -m axq` as cli.main should run it: SIGTERM and SIGHUP behave as Ctrl-C.
AXQ_WITH_HANDLERS = "import sys\nfrom axq import cli, process\nprocess.install_signal_handlers()\nsys.exit(cli.main())"


def start_measured_build(gate: Path, *conditions: str, handlers: bool = False,
                         env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `axq byquery measured,gate_dir=GATE,... , get contended` as a real process."""
    query = ",".join(["measured", f"gate_dir={gate}", *conditions])
    entry = ["-c", AXQ_WITH_HANDLERS] if handlers else ["-m", "axq"]
    return subprocess.Popen([sys.executable, *entry, "byquery", query, ",", "get", "contended"], cwd=REPO,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_started(gate: Path, build: subprocess.Popen, timeout_s: float = 60) -> int:
    """Return the measured child's pid once the toy_measure build is inside its measurement."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append((gate / "started").read_text()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    while reader.is_alive() and build.poll() is None and time.monotonic() < deadline:
        reader.join(timeout=0.05)
    if not got:
        os.close(os.open(gate / "started", os.O_WRONLY | os.O_NONBLOCK))  # let the reader go
        build.kill()
        pytest.fail(f"the build never reached its measurement: {build.communicate(timeout=30)}")
    return int(got[0])


def release(gate: Path) -> None:
    """Let a toy_measure build waiting at its gate leave its measurement."""
    (gate / "release").write_text("go")


@pytest.fixture
def measure_env(work: Path, tmp_path: Path) -> dict[str, str]:
    """Return the environment for axq processes: toy recipes, a private measurement lock."""
    from axq.measure import LOCK_ENV

    return {**os.environ, LOCK_ENV: str(tmp_path / "measure.lock")}


def test_kill_9_of_axq_in_a_measured_build_leaves_no_process_of_it(gate, measure_env, work):
    build = start_measured_build(gate, "spin_s=30", env=measure_env)
    with watching(wait_started(gate, build)) as pidfd:
        build.kill()
        build.communicate(timeout=30)
        assert gone(pidfd, 2.0)
    assert not any(p.name.startswith("toy_measure") for p in work.iterdir() if p.is_dir())
    from axq.measure import LOCK_ENV, measurement

    logged: list[str] = []
    with measurement("next", log=logged.append, lock=measure_env[LOCK_ENV]):
        assert logged == []  # the killed build's measurement lock went with it


@pytest.mark.parametrize(("signum", "handlers"), [(signal.SIGINT, False), (signal.SIGTERM, True),
                                                  (signal.SIGHUP, True)])
def test_a_signal_to_axq_alone_stops_the_measured_child_before_axq_reports(gate, measure_env, signum, handlers):
    build = start_measured_build(gate, "spin_s=30", handlers=handlers, env=measure_env)
    with watching(wait_started(gate, build)) as pidfd:
        errors = lines_of(build.stderr)
        build.send_signal(signum)
        try:  # bounded: an axq that never reports fails the test instead of hanging the suite
            text = wait_for_line(errors, "interrupted while building", timeout_s=60)
        except BaseException:
            build.kill()
            raise
        assert gone(pidfd, 0), "the child was still running when axq reported the interruption"
        assert "nothing was kept" in text
        assert build.wait(timeout=30) == 130
        log = Path(text.rsplit("log: ", 1)[1].strip()).read_text()
        assert "stopped child processes still running: pid" in log


def test_sigterm_to_axq_without_handlers_still_takes_the_child_down(gate, measure_env):
    build = start_measured_build(gate, "spin_s=30", env=measure_env)
    with watching(wait_started(gate, build)) as pidfd:
        build.terminate()
        build.communicate(timeout=30)
        assert gone(pidfd, 2.0)
