"""Show what long steps are doing: a bar on a terminal, timestamped lines in a log.

Every message also goes to the current build's log file. `--quiet` silences the screen,
never the log. Python warnings raised while a build runs (`capturing_warnings`) are such
messages too, so a library's warnings land in the build log, not on a quiet screen.
"""

from __future__ import annotations

import sys
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

    def __init__(self, mode: str | None = None, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.mode = mode or ("bar" if self.stream.isatty() else "lines")
        self.log_file: IO[str] | None = None

    def log(self, message: str) -> None:
        """Write one timestamped line to the build log and, unless quiet, the screen."""
        line = _stamp(message)
        if self.log_file:
            self.log_file.write(line + "\n")
            self.log_file.flush()
        if self.mode != "quiet":
            self._write(line)

    @contextmanager
    def capturing_warnings(self) -> Iterator[None]:
        """Log the Python warnings raised meanwhile (once per place, as Python shows them), one line each."""

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
            self.log(f"warning: {category.__name__}: {message} ({filename}:{lineno})")

        with warnings.catch_warnings():
            warnings.showwarning = show
            yield

    def _write(self, line: str) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def progress(self, items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """Yield items, showing progress (bar with rate and ETA, or a line per 10%)."""
        total = total if total is not None else _length(items)
        if self.mode == "bar":
            from tqdm import tqdm

            yield from tqdm(items, total=total, desc=desc, file=self.stream, leave=False)
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


def _length(items: Any) -> int | None:
    try:
        return len(items)
    except TypeError:
        return None
