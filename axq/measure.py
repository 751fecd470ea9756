"""Measure one thing at a time per machine, and say how busy the machine was meanwhile.

`measurement(label)` is a context manager for the part of a build whose time is its result
(a LoadGen performance run). It

- holds a machine-wide lock: an flock'd file outside any work collection,
  `/tmp/axq-measure.lock` unless AXQ_MEASURE_LOCK names another (so two work collections,
  two users, a sweep and a one-liner take turns). The holder writes who it is (label, pid,
  since when) into the lock file itself; a process that must wait reads it and logs one
  line saying what it waits for. The lock is reentrant within a process: a measurement
  nested in another one (same thread) does not wait; another thread of the process waits
  like another process. A child process that measures while its parent holds the lock
  would wait for ever: measure in the parent, around the child.
- samples the machine's CPU time (/proc/stat), this process tree's CPU time (this process,
  the children it has reaped, and its live descendants from /proc/<pid>/stat) and the load
  average at the start and at the end, and on exit fills `report`: how much of the
  machine's CPU time in the interval went to other processes, how much to ours, and whether
  the others' share was above the threshold (`contended`). /proc/stat counts every CPU the
  kernel shows, so in a container the share is of the host's CPUs. Without /proc (not
  Linux) the shares are None and nothing is flagged.

Light to import (no third-party modules): the kernel and recipes use it at build time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

DEFAULT_THRESHOLD = 0.05
LOCK_ENV = "AXQ_MEASURE_LOCK"
DEFAULT_LOCK = "/tmp/axq-measure.lock"

Log = Callable[[str], None]


def lock_path() -> str:
    """Return the measurement lock file: AXQ_MEASURE_LOCK, else /tmp/axq-measure.lock."""
    return os.environ.get(LOCK_ENV) or DEFAULT_LOCK


# ----------------------------------------------------------------------------- CPU samples


@dataclass(frozen=True)
class Sample:
    """CPU time counters at one moment, in clock ticks, with the wall time and load average."""

    time: float
    machine_busy: int
    machine_total: int
    own: int
    loadavg: tuple[float, float, float]


def sample() -> Sample | None:
    """Read the counters now; None where there is no /proc."""
    try:
        busy, total = machine_ticks()
        return Sample(time.time(), busy, total, tree_ticks(os.getpid()), loadavg())
    except OSError:
        return None


def machine_ticks() -> tuple[int, int]:
    """Return (busy, total) CPU ticks of the whole machine since boot, all CPUs together."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal  # guest time is inside user already
    return busy, busy + idle + iowait


def tree_ticks(root: int) -> int:
    """Return the CPU ticks of a process, the children it reaped, and its live descendants."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, ()))
    return total


def process_table() -> dict[int, tuple[int, int]]:
    """Map each pid to (parent pid, utime + stime + cutime + cstime in ticks)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = _stat_of(name)
            if entry is not None:
                table[int(name)] = entry
    return table


def _stat_of(pid: str) -> tuple[int, int] | None:
    """Parse /proc/<pid>/stat into (ppid, CPU ticks); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def loadavg() -> tuple[float, float, float]:
    """Return the 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as handle:
        one, five, fifteen = (float(f) for f in handle.read().split()[:3])
    return one, five, fifteen


def shares(start: Sample, end: Sample) -> tuple[float, float]:
    """Return (other processes', our tree's) share of the machine's CPU time between two samples."""
    total = end.machine_total - start.machine_total
    if total <= 0:
        return 0.0, 0.0
    own = max(0, end.own - start.own)
    other = max(0, end.machine_busy - start.machine_busy - own)
    return min(1.0, other / total), min(1.0, own / total)


# ----------------------------------------------------------------------------- the lock


class _Holding:
    """This process's hold on the lock: a thread lock, a depth for nesting, the open file."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_HOLDING = _Holding()


def acquire(label: str, log: Log, path: str) -> float:
    """Take the lock (nested in this thread: at once); log what we wait for; return seconds waited."""
    started = time.monotonic()
    if not _HOLDING.thread_lock.acquire(blocking=False):
        log(waiting_line(path))
        _HOLDING.thread_lock.acquire()
    try:
        if _HOLDING.depth == 0:
            _HOLDING.fd = _lock_file(path, log)
            _write_holder(_HOLDING.fd, label)
        _HOLDING.depth += 1
    except BaseException:
        _HOLDING.thread_lock.release()
        raise
    return time.monotonic() - started


def release() -> None:
    """Give the lock back (the file when the outermost measurement of the process ends)."""
    _HOLDING.depth -= 1
    if _HOLDING.depth == 0 and _HOLDING.fd is not None:
        fd, _HOLDING.fd = _HOLDING.fd, None
        _clear_holder(fd)
        os.close(fd)  # closing the file releases the flock
    _HOLDING.thread_lock.release()


def _lock_file(path: str, log: Log) -> int:
    """Open the lock file and flock it, waiting (and saying for what) if another process holds it."""
    fd = _open_shared(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(waiting_line(path))
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_shared(path: str) -> int:
    """Open (creating, writable by every user) the lock file; read-only if that is all we may."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's file in a sticky directory (fs.protected_regular)
        return _open_existing(path)
    if os.fstat(fd).st_uid == os.getuid():
        os.fchmod(fd, 0o666)
    return fd


def _open_existing(path: str) -> int:
    """Open an existing lock file for writing if allowed, else for reading (flock needs no more)."""
    try:
        return os.open(path, os.O_RDWR)
    except PermissionError:
        return os.open(path, os.O_RDONLY)


def _write_holder(fd: int, label: str) -> None:
    """Record who holds the lock, for those who wait (not possible on a read-only file)."""
    text = json.dumps({"label": label, "pid": os.getpid(), "since": time.time()})
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)


def _clear_holder(fd: int) -> None:
    """Leave the lock file empty: nobody holds it."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)


def holder(path: str | None = None) -> dict | None:
    """Return what the lock's holder wrote (label, pid, since), or None if unknown."""
    try:
        with open(path or lock_path()) as handle:
            found = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def waiting_line(path: str) -> str:
    """Say what a measurement waits for: which process, measuring what, since when."""
    found = holder(path)
    if found is None:
        return f"waiting for the measurement lock {path} (holder unknown)"
    since = time.strftime("%H:%M:%S", time.localtime(found.get("since", 0)))
    who = "another thread of this process" if found.get("pid") == os.getpid() else f"pid {found.get('pid')}"
    return f"waiting for the measurement lock: {who} measuring {found.get('label')} since {since}"


# ----------------------------------------------------------------------------- measurement


class Measurement:
    """Hold the measurement lock and watch the machine's CPU use; `report` is set on exit."""

    def __init__(self, label: str, log: Log | None = None, threshold: float = DEFAULT_THRESHOLD,
                 lock: str | None = None) -> None:
        self.label, self.threshold = label, threshold
        self.log: Log = log or (lambda message: None)
        self.lock = lock or lock_path()
        self.report: dict | None = None
        self._waited = 0.0
        self._start: Sample | None = None
        self._started = 0.0

    def __enter__(self) -> Measurement:
        self._waited = acquire(self.label, self.log, self.lock)
        self._start = sample()
        self._started = time.time()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            self.report = self._make_report(sample())
        finally:
            release()

    def _make_report(self, end: Sample | None) -> dict:
        """Describe the interval: when, how long we waited, who used the CPUs, contended or not."""
        report = {"label": self.label, "start": self._started, "end": time.time(),
                  "waited_s": round(self._waited, 3), "threshold": self.threshold, "lock": self.lock}
        if self._start is None or end is None:
            return {**report, "other_cpu_share": None, "own_cpu_share": None, "loadavg": None, "contended": False}
        other, own = shares(self._start, end)
        return {**report, "other_cpu_share": round(other, 4), "own_cpu_share": round(own, 4),
                "loadavg": {"start": list(self._start.loadavg), "end": list(end.loadavg)},
                "contended": other > self.threshold}


def measurement(label: str, log: Log | None = None, threshold: float = DEFAULT_THRESHOLD,
                lock: str | None = None) -> Measurement:
    """Return the context manager that measures `label` alone on this machine (see the module doc)."""
    return Measurement(label, log, threshold, lock)


def contention_warning(name: str, report: dict | None) -> str | None:
    """Return the warning for a contended measurement of entry `name`, or None."""
    if not report or not report.get("contended"):
        return None
    percent = round(100 * report["other_cpu_share"])
    return f"{name} was measured while the machine was busy: {percent}% of CPU used by other processes"
