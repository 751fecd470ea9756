"""Helpers for tests that watch real processes: read their output as it comes, know when they are gone."""

from __future__ import annotations

import os
import queue
import select
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def lines_of(stream: object) -> queue.Queue:
    """Read a stream's lines in a thread into a queue (None at the end)."""
    found: queue.Queue = queue.Queue()

    def pump() -> None:
        for text in stream:  # type: ignore[attr-defined]
            found.put(text)
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return found


def wait_for_line(found: queue.Queue, piece: str, timeout_s: float = 120) -> str:
    """Return the first queued line containing `piece` (failing at the end or after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while (text := found.get(timeout=max(0.01, deadline - time.monotonic()))) is not None:
        if piece in text:
            return text
    pytest.fail(f"no line with {piece!r}")


@contextmanager
def watching(pid: int) -> Iterator[int]:
    """Yield a pidfd of a process; kill it afterwards if a failed test left it running."""
    pidfd = os.pidfd_open(pid)
    try:
        yield pidfd
    finally:
        if not gone(pidfd, 0):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        os.close(pidfd)


def gone(pidfd: int, timeout_s: float) -> bool:
    """Return whether the process behind pidfd has ended, waiting at most timeout_s."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(timeout_s * 1000)))
