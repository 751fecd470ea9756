"""Children started with axq.process.spawn never outlive their parent, however it ends.

Real processes throughout. A test knows a process has started from a line it prints, and
that one has ended from its pidfd (readable once the process is gone), always with a
bounded timeout: no sleeps.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from axq import process
from tests.conftest import REPO

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
    pidfd = os.pidfd_open(pid)
    yield parent, pid, pidfd
    if not gone(pidfd, 0):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    os.close(pidfd)
    parent.kill()
    parent.communicate()


def gone(pidfd: int, timeout_s: float) -> bool:
    """Return whether the process behind pidfd has ended, waiting at most timeout_s."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(timeout_s * 1000)))


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
