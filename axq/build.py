"""Build what a resolved graph needs and the work collection lacks.

Policy, cheapest check first: an entry whose identity is indexed is reused; otherwise its
dependencies are made first, then it is built under a lock per identity (a second process
waits, then reuses the result) in a temporary directory that becomes visible by a single
rename once its manifest is written. A failed, interrupted or killed build leaves its log
in `.logs/` and nothing that looks complete.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shlex
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from axq.entry import Entry
from axq.errors import AxqError, BuildError, Interrupted
from axq.graph import Node
from axq.progress import Reporter
from axq.query import format_value
from axq.store import MANIFEST, Store


class BuildContext:
    """What a recipe's build function gets: parameters, dependencies, a directory, a log."""

    def __init__(self, node: Node, path: Path, deps: dict[str, Entry], builder: Builder) -> None:
        self.params = dict(node.params)
        self.deps = deps
        self.path = path
        self.reporter = builder.reporter
        self.store = builder.store
        self.used: dict[str, Entry] = {}

    def log(self, message: str) -> None:
        """Write a timestamped line to the build log (and the screen unless quiet)."""
        self.reporter.log(message)

    def progress(self, items: Any, total: int | None = None, desc: str = "") -> Any:
        """Wrap an iterable with progress display."""
        return self.reporter.progress(items, total=total, desc=desc)

    def byquery(self, query: str, overrides: dict[str, Any] | None = None) -> Entry:
        """Fetch (building if needed) another entry of this work collection during the build.

        For builds whose inputs depend on results (a peak search's probes): the entry is
        recorded as `used` in the manifest, so `axq rm` will not break this one silently.
        """
        from axq.api import byquery

        entry = byquery(query, overrides, work_collection=self.store.root, reporter=self.reporter)
        self.used[entry.name] = entry
        return entry


def reproduce_command(node: Node) -> str:
    """Return the `axq byquery` command line that resolves to this exact entry."""
    conditions = [*node.producer.tags, *(f"{k}={format_value(v)}" for k, v in sorted(node.params.items()))]
    return shlex.join(["axq", "byquery", ",".join(conditions)])


def _versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    """Return installed versions of the named distributions (None if absent)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("axq", "lark", *packages):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def manifest_for(node: Node, deps: dict[str, Entry], used: dict[str, Entry], results: Any, started: float,
                 query: str) -> dict:
    """Describe a finished build: what it is, what it used, and how it was made."""
    recipe = node.producer.recipe
    finished = time.time()
    return {
        "identity": node.identity,
        "name": node.name,
        "recipe": recipe.name,
        "recipe_version": recipe.version,
        "recipe_path": str(recipe.path),
        "tags": list(node.producer.tags),
        "params": node.params,
        "deps": {k: {"identity": e.identity, "name": e.name} for k, e in deps.items()},
        "used": {e.name: e.identity for e in used.values()},
        "getters": list(recipe.getters),
        "results": results or {},
        "provenance": {
            "query": query,
            "command": reproduce_command(node),
            "python": platform.python_version(),
            "packages": _versions(recipe.packages),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "started": _timestamp(started),
            "finished": _timestamp(finished),
            "duration_s": round(finished - started, 3),
        },
    }


@contextmanager
def identity_lock(store: Store, node: Node, reporter: Reporter) -> Iterator[None]:
    """Hold the lock for one identity; say so if another process holds it first."""
    os.makedirs(store.path(".locks"), exist_ok=True)
    with open(store.path(".locks", node.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            reporter.log(f"waiting for another process building {node.name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class Builder:
    """Make sure the entries of a graph exist, building what is missing."""

    def __init__(self, store: Store, reporter: Reporter | None = None) -> None:
        self.store = store
        self.reporter = reporter or Reporter()

    def lookup(self, node: Node) -> Entry | None:
        """Return the built entry for a node, or None."""
        name = self.store.name_for_identity(node.identity, node.name)
        return Entry.load(self.store, name) if name else None

    def ensure(self, node: Node, query: str | None = None) -> Entry:
        """Return the node's entry, building it and its dependencies as needed."""
        found = self.lookup(node)
        if found:
            return found
        deps = {name: self.ensure(dep) for name, dep in node.deps.items()}
        with identity_lock(self.store, node, self.reporter):
            return self.lookup(node) or self._build(node, deps, query or node.query)

    def _build(self, node: Node, deps: dict[str, Entry], query: str) -> Entry:
        """Build one node in a temporary directory and publish it by rename."""
        log_path = self.store.path(".logs", node.name + ".log")
        tmp = self._fresh_tmp(node)
        try:
            self._run(node, deps, query, Path(tmp), log_path)
            os.rename(tmp, self.store.path(node.name))
        except BaseException as error:
            shutil.rmtree(tmp, ignore_errors=True)
            explained = _explain(error, node, log_path)
            if explained is error:
                raise
            raise explained from None
        self.store.record(node.identity, node.name)
        os.unlink(log_path)
        return Entry.load(self.store, node.name)

    def _fresh_tmp(self, node: Node) -> str:
        """Clear leftovers of earlier attempts (we hold the lock) and make a build dir."""
        tmp_root = self.store.path(".tmp")
        os.makedirs(tmp_root, exist_ok=True)
        os.makedirs(self.store.path(".logs"), exist_ok=True)
        for old in os.listdir(tmp_root):
            if old.startswith(node.name + "."):
                shutil.rmtree(os.path.join(tmp_root, old), ignore_errors=True)
        return tempfile.mkdtemp(prefix=node.name + ".", dir=tmp_root)

    def _run(self, node: Node, deps: dict[str, Entry], query: str, tmp: Path, log_path: str) -> None:
        """Call the recipe's build function with the log open, then write the manifest."""
        started = time.time()
        build = node.producer.recipe.function(node.producer.build)
        context = BuildContext(node, tmp, deps, self)
        outer_log = self.reporter.log_file  # set when this build runs inside another (ctx.byquery)
        with open(log_path, "w") as log:
            self.reporter.log_file = log
            try:
                self.reporter.log(f"building {node.name} ({node.producer.label})")
                results = build(context)
                self.reporter.log(f"built {node.name}")
            except BaseException as error:
                self.reporter.log(f"FAILED: {type(error).__name__}: {error}")
                _log_traceback(log, error)
                raise
            finally:
                self.reporter.log_file = outer_log
        shutil.copyfile(log_path, tmp / "build.log")
        manifest = manifest_for(node, deps, context.used, results, started, query)
        (tmp / MANIFEST).write_text(_dump(manifest))


def _dump(manifest: dict) -> str:
    import json

    return json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"


def _log_traceback(log: Any, error: BaseException) -> None:
    if not isinstance(error, (AxqError, KeyboardInterrupt)):
        import traceback

        traceback.print_exception(error, file=log)


def _explain(error: BaseException, node: Node, log_path: str) -> BaseException:
    """Turn a build failure into the error the user sees, naming (and carrying) the log."""
    if isinstance(error, KeyboardInterrupt):
        message = f"interrupted while building {node.name}; nothing was kept; log: {log_path}"
        explained: BaseException = Interrupted(message)
    elif isinstance(error, AxqError):
        explained = BuildError(f"building {node.name} failed: {error}; log: {log_path}")
        explained.exit_code = max(error.exit_code, 1)  # type: ignore[attr-defined]
    else:
        error.add_note(f"axq: building {node.name} failed; log: {log_path}")
        explained = error
    explained.axq_log = log_path  # type: ignore[attr-defined]
    return explained


def log_path_of(error: BaseException) -> str | None:
    """Return the build log a failure points to, if it came from a build."""
    return getattr(error, "axq_log", None)

