"""Show what long steps are doing: a bar on a terminal, timestamped lines in a log.

Every message also goes to the current build's log file. `--quiet` silences the screen,
never the log. Details (a benchmark child's own output, such as LoadGen's 58-line summary)
go to the log always and to the screen only with `--verbose`; a step of known length shows
a line with its elapsed and expected time meanwhile (`timed`). What a library says while a
build runs in this process (`capturing_output`: Python warnings, and lines written to
sys.stderr, such as torch's own log handler's) is such a message too, so it lands in the
build log, not on a quiet screen.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

T = TypeVar("T")


def _stamp(message: str) -> str:
    return time.strftime("[%H:%M:%S] ") + message


class Reporter:
    """Where progress goes: "bar" (a terminal), "lines" (a log or pipe) or "quiet"."""

    def __init__(self, mode: str | None = None, stream: IO[str] | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.mode = mode or ("bar" if self.stream.isatty() else "lines")
        self.verbose = verbose and self.mode != "quiet"
        self.log_file: IO[str] | None = None

    def log(self, message: str) -> None:
        """Write one timestamped line to the build log and, unless quiet, the screen."""
        line = _stamp(message)
        if self.log_file:
            self.log_file.write(line + "\n")
            self.log_file.flush()
        if self.mode != "quiet":
            self._write(line)

    def detail(self, message: str) -> None:
        """Write one timestamped line to the build log; to the screen only when verbose."""
        if self.verbose:
            self.log(message)
        elif self.log_file:
            self.log_file.write(_stamp(message) + "\n")
            self.log_file.flush()

    @contextmanager
    def timed(self, desc: str, expected_s: float) -> Iterator[None]:
        """Show a step's elapsed time against its expected one while the block runs.

        A bar on a terminal (updated 4 times a second), a line at the start and at the end
        in a log, nothing when quiet or verbose (the details show what happens then).
        """
        if self.mode == "quiet" or self.verbose:
            yield
            return
        if self.mode == "lines":
            started = time.monotonic()
            self.log(f"{desc}: expected to take about {expected_s:.0f} s")
            yield
            self.log(f"{desc}: done in {time.monotonic() - started:.1f} s")
            return
        with _ElapsedBar(desc, expected_s, self.screen):
            yield

    @contextmanager
    def capturing_output(self) -> Iterator[None]:
        """Log, one line each, the Python warnings raised meanwhile (once per place, as Python
        shows them) and the lines written to sys.stderr meanwhile (see _Stderr)."""

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
            self.log(f"warning: {category.__name__}: {message} ({filename}:{lineno})")

        with warnings.catch_warnings(), _STDERR.routed_to(self):
            warnings.showwarning = show
            yield

    @property
    def screen(self) -> IO[str]:
        """Return the stream for the screen: never a build's routed stderr (log() writes the log itself)."""
        return self.stream.real() if isinstance(self.stream, _Stderr) else self.stream

    def _write(self, line: str) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            tqdm.write(line, file=self.screen)
        else:
            print(line, file=self.screen, flush=True)

    def progress(self, items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """Yield items, showing progress (bar with rate and ETA, or a line per 10%)."""
        total = total if total is not None else _length(items)
        if self.mode == "bar":
            from tqdm import tqdm

            yield from tqdm(items, total=total, desc=desc, file=self.screen, leave=False)
            self.log(f"{desc}: done {total or ''}".rstrip())
            return
        yield from self._lines(items, total, desc)

    def _lines(self, items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
        """Yield items, logging a plain line at the start, every 10% and the end."""
        start, step, count = time.monotonic(), max(1, (total or 0) // 10), 0
        self.log(f"{desc}: 0/{total if total is not None else '?'}")
        for count, item in enumerate(items, 1):
            yield item
            if total and count % step == 0 and count < total:
                self.log(f"{desc}: {count}/{total} ({count / (time.monotonic() - start):.1f}/s)")
        self.log(f"{desc}: {count}/{total if total is not None else count} done in {time.monotonic() - start:.1f}s")


class _ElapsedBar:
    """A tqdm bar of seconds: elapsed against expected, moved by a thread of its own until closed."""

    def __init__(self, desc: str, expected_s: float, screen: IO[str]) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=round(max(expected_s, 0.1), 1), desc=desc, file=screen, leave=False,
                        bar_format="{desc}: {bar} {n:.1f}/{total:.0f} s expected")
        self.started, self.stop = time.monotonic(), threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        while not self.stop.wait(0.25):
            elapsed = time.monotonic() - self.started
            self.bar.total = max(self.bar.total, round(elapsed, 1))
            self.bar.n = round(elapsed, 1)
            self.bar.refresh()

    def __enter__(self) -> _ElapsedBar:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.bar.close()


class _Stderr:
    """sys.stderr while a build runs in this process: each whole line to that build's Reporter.log.

    A library imported during a build may keep the stream it found then (torch's logging
    handler, made by `import torch`, writes "W1206 ... No CUDA runtime is found" on a quiet
    screen), so this object outlives the build inside it: with no build running it writes
    where sys.stderr points again. Anything else (fileno, encoding, isatty) is the real
    stream's. A Reporter made during a build (its stream: this one) writes its screen lines
    to the real stream (Reporter.screen).
    """

    def __init__(self) -> None:
        self.routes: list[Reporter] = []  # the reporters of the builds running (they nest)
        self.original: Any = None  # the sys.stderr the first of them replaced
        self.partial = ""
        self.lock = threading.RLock()
        self.local = threading.local()

    @contextmanager
    def routed_to(self, reporter: Reporter) -> Iterator[None]:
        """Send sys.stderr's lines to reporter's log while the block runs."""
        with self.lock:
            if not self.routes:
                self.original, sys.stderr = sys.stderr, self
            self.routes.append(reporter)
        try:
            yield
        finally:
            with self.lock:
                if self.partial:
                    self._log(self.partial)
                    self.partial = ""
                self.routes.remove(reporter)
                if not self.routes:
                    sys.stderr = self.original

    def real(self) -> Any:
        """Return the stream this one stands for: the one it replaced, or sys.stderr once no build runs."""
        if self.routes:
            return self.original
        return sys.stderr if sys.stderr is not self else sys.__stderr__

    def write(self, text: str) -> int:
        """Log each whole line (keeping a partial one for later); outside a build, write through."""
        with self.lock:
            if not self.routes or getattr(self.local, "logging", False):  # outside a build, or a line being logged
                return self.real().write(text)
            lines = (self.partial + text).split("\n")
            self.partial = lines.pop()
            for line in lines:
                self._log(line)
        return len(text)

    def _log(self, line: str) -> None:
        self.local.logging = True
        try:
            self.routes[-1].log(line)
        finally:
            self.local.logging = False

    def flush(self) -> None:
        """Flush the real stream (whole lines are logged as they come)."""
        self.real().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


_STDERR = _Stderr()


def _length(items: Any) -> int | None:
    try:
        return len(items)
    except TypeError:
        return None


def duration(seconds: float) -> str:
    """Say a duration the way a person would: `12 s`, `3 min`, `2 h 10 min`."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
