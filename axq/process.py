"""Start child processes that never outlive axq, and stop them when axq stops.

A child started with `spawn` dies with this process however it dies:

- on Linux the child asks the kernel, before it runs its program, for SIGKILL when its
  parent dies (`prctl(PR_SET_PDEATHSIG)`), which covers `kill -9` of axq. The kernel sends
  that signal when the *thread* that forked the child ends, not the process, so `spawn`
  forks from the main thread, or, when called from another thread, from one long-lived
  daemon thread that ends only with the process. On other systems there is no such signal:
  there `kill -9` of axq leaves the child running (only the paths below apply).
- every live child is in a registry; `stop_children` sends SIGTERM, then SIGKILL after a
  grace period, and reaps them. An `atexit` hook calls it, and `install_signal_handlers`
  turns SIGTERM and SIGHUP into KeyboardInterrupt, so a build cleans up (and stops its
  children before it reports the interruption) as it does on Ctrl-C.

A child need not be a `subprocess.Popen`: anything with a pid, a returncode, `poll` and
`wait` (a `Child`; axq.zygote's warm children) is registered with `adopt` and stopped the
same way.

Each child leads a process group of its own, so stopping it also stops what it started in
that group. A terminal's Ctrl-C goes to the foreground group, axq's: the child does not get
it, and axq stops the child in its clean-up, before it says "interrupted". A child in its
own group must not read the terminal (it would be stopped by SIGTTIN): give it a pipe or
DEVNULL as stdin.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import IO, Any, Protocol

PR_SET_PDEATHSIG = 1

_live: set[Child] = set()
_live_lock = threading.Lock()
_hooked: list[bool] = []


class Child(Protocol):
    """What axq needs of a child process to stop it: subprocess.Popen has it, so do warm children."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class RunningChild(Child, Protocol):
    """A started child whose output its caller reads: a subprocess.Popen with a pipe, or a warm child."""

    @property
    def stdout(self) -> IO[str] | None: ...


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that clean-up runs."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")


def spawn(args: Any, **popen_kwargs: Any) -> subprocess.Popen:
    """Start a child (as subprocess.Popen would) that dies when this process dies."""
    _hook_atexit()
    if threading.current_thread() is threading.main_thread():
        return _start(args, popen_kwargs)
    return _spawner().run(args, popen_kwargs)


def _start(args: Any, popen_kwargs: dict[str, Any]) -> subprocess.Popen:
    """Start and register the child; call from a thread that lives as long as the process."""
    if "preexec_fn" in popen_kwargs or "process_group" in popen_kwargs:
        raise TypeError("spawn sets preexec_fn and process_group itself")
    with _live_lock:
        process = subprocess.Popen(args, preexec_fn=child_setup(os.getpid()), process_group=0, **popen_kwargs)
        _live.add(process)
    return process


def adopt(child: Child) -> None:
    """Register a child started otherwise (it leads its own process group): stop_children stops it too."""
    _hook_atexit()
    with _live_lock:
        _live.add(child)


def child_setup(parent: int) -> Callable[[], None] | None:
    """Return what a forked child runs first: ask for SIGKILL when the parent dies (None: not Linux)."""
    prctl = libc_prctl()
    if prctl is None:
        return None

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return setup


def libc_prctl() -> Callable[..., int] | None:
    """Return libc's prctl on Linux (looked up in the parent: the child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


class _Spawner:
    """A daemon thread that forks children for other threads: it ends only with the process."""

    def __init__(self) -> None:
        self.requests: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, name="axq-spawner", daemon=True).start()

    def run(self, args: Any, popen_kwargs: dict[str, Any]) -> subprocess.Popen:
        """Start a child from the spawner thread and return it (or raise what Popen raised)."""
        answer: queue.Queue = queue.Queue(maxsize=1)
        self.requests.put((args, popen_kwargs, answer))
        process, error = answer.get()
        if error is not None:
            raise error
        return process

    def _serve(self) -> None:
        """Start each requested child; hand back the process or the exception."""
        while True:
            args, popen_kwargs, answer = self.requests.get()
            try:
                answer.put((_start(args, popen_kwargs), None))
            except BaseException as error:
                answer.put((None, error))


_spawners: list[_Spawner] = []
_spawner_lock = threading.Lock()


def _spawner() -> _Spawner:
    """Return the spawner, starting its thread on first use."""
    with _spawner_lock:
        if not _spawners:
            _spawners.append(_Spawner())
        return _spawners[0]


def live_children() -> list[Child]:
    """Return the spawned children that have not been reaped yet (reaping those that ended)."""
    with _live_lock:
        ended = {p for p in _live if p.poll() is not None}
        _live.difference_update(ended)
        return list(_live)


def stop_children(grace_s: float = 2.0, children: Iterable[Child] | None = None) -> list[int]:
    """Stop children (all spawned ones by default): SIGTERM, then SIGKILL after grace_s; reap them.

    Return the pids of those that were still running.
    """
    running = [p for p in (live_children() if children is None else children) if p.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        _wait_until(process, deadline)
    for process in running:
        _signal_group(process, signal.SIGKILL)  # what ignored SIGTERM, the child's own children too
        process.wait()
    with _live_lock:
        _live.difference_update(running)
    return [p.pid for p in running]


def _signal_group(process: Child, signum: int) -> None:
    """Send a signal to the process group the child leads (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _wait_until(process: Child, deadline: float) -> None:
    """Wait for a child until a monotonic deadline."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=max(0.0, deadline - time.monotonic()))


def _hook_atexit() -> None:
    """Stop the children at interpreter exit (registered once, on the first spawn)."""
    if not _hooked:
        _hooked.append(True)
        atexit.register(stop_children)


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP raise Terminated (a KeyboardInterrupt) in the main thread.

    Call it at the start of a command-line program; in any other thread it does nothing
    (Python delivers signals to the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_terminated)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)
