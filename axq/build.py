"""Build what a resolved graph needs and the work collection lacks.

Policy, cheapest check first: an entry whose identity is indexed is reused; otherwise its
dependencies are made first, then it is built under a lock per identity (a second process
waits, then reuses the result) in a temporary directory that becomes visible by a single
rename once its manifest is written. A failed, interrupted or killed build leaves its log
in `.logs/` and nothing that looks complete.
"""

from __future__ import annotations

import errno
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
from typing import TYPE_CHECKING, Any

from axq.codeid import Code, recipe_code
from axq.entry import BuildContext, Entry
from axq.errors import AxqError, BuildError, Interrupted
from axq.graph import Node
from axq.progress import Reporter
from axq.query import Query, format_value
from axq.store import MANIFEST, Store, memo_key

if TYPE_CHECKING:
    from axq.recipe import Recipe


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
        "code": node.code.files,  # what the identity digests: file (in its recipe root) -> sha256
        "tags": list(node.producer.tags),
        "params": node.params,
        "deps": {k: stamp(e) for k, e in deps.items()},
        "used": {e.name: stamp(e) for e in used.values()},
        "results": results or {},
        "provenance": {
            "query": query,
            "sources": {k: v for k, v in node.sources.items() if v in ("collection", "query")},
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


def stamp(entry: Entry) -> dict[str, Any]:
    """Record what an entry was when this build relied on it: identity, recipe version, build time."""
    return {"identity": entry.identity, "name": entry.name, "recipe": entry.manifest.get("recipe"),
            "recipe_version": entry.manifest.get("recipe_version"),
            "built": entry.manifest.get("provenance", {}).get("finished")}


def overrides_text(overrides: dict[str, Any] | None) -> list[str]:
    """Write overrides as the `--k=v` words that key the query memo."""
    return [f"--{k}={format_value(v)}" for k, v in sorted((overrides or {}).items())]


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


DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class Builder:
    """Make sure the entries of a graph exist, building what is missing."""

    def __init__(self, store: Store, reporter: Reporter | None = None) -> None:
        self.store = store
        self.reporter = reporter or Reporter()

    def byquery(self, query: str | Query, overrides: dict[str, Any] | None = None, memo: str | None = None) -> Entry:
        """Return the entry a query means: from the memo, else resolved and built as needed."""
        from axq.resolve import Scope, resolve

        memo = memo or memo_key(str(query), *overrides_text(overrides))
        name = self.store.memo_lookup(memo)
        if name:
            return Entry.load(self.store, name)
        entry = self.ensure(resolve(query, overrides, Scope.of(self.store)), str(query))
        self.store.cache(self.store.memo_record, memo, entry.name)
        return entry

    def lookup(self, node: Node) -> Entry | None:
        """Return the built entry for a node if it is there and not stale, else None."""
        name = self.store.name_for_identity(node.identity, node.name)
        if not name:
            return None
        entry = Entry.load(self.store, name)
        reason = stale_reason(self.store, entry.manifest)
        if reason:
            self.reporter.log(f"{name} is stale ({reason}): building it again")
            return None
        return entry

    def ensure(self, node: Node, query: str | None = None) -> Entry:
        """Return the node's entry, building it and its dependencies as needed."""
        found = self.lookup(node)
        if found:
            return found
        deps = {name: self.ensure(dep) for name, dep in node.deps.items()}
        with self.store.writing(node.name), identity_lock(self.store, node, self.reporter):
            return self.lookup(node) or self._build(node, deps, query or node.query)

    def _build(self, node: Node, deps: dict[str, Entry], query: str) -> Entry:
        """Build one node in a temporary directory and publish it by rename."""
        log_path = self.store.path(".logs", node.name + ".log")
        tmp = self._fresh_tmp(node)
        try:
            manifest = self._run(node, deps, query, Path(tmp), log_path)
            self._publish(node, tmp)
        except BaseException as error:
            fault = environment_fault(error, tmp, self.store.root)  # before the removal frees the disk
            shutil.rmtree(tmp, ignore_errors=True)
            explained = _explain(error, node, log_path, fault)
            if explained is error:
                raise
            raise explained from None
        self.store.record(node.identity, node.name)
        self.store.note_recipe_root(node.name, manifest.get("results") or {})
        os.unlink(log_path)
        warn_if_contended(node.name, manifest, self.reporter)
        return Entry.load(self.store, node.name)

    def _publish(self, node: Node, tmp: str) -> None:
        """Make the finished build visible by one rename, moving a stale predecessor aside first."""
        target = self.store.path(node.name)
        if not os.path.exists(target):
            os.rename(tmp, target)
            return
        doomed = f"{tmp}.stale"
        os.rename(target, doomed)
        try:
            os.rename(tmp, target)
        except OSError:
            os.rename(doomed, target)  # the old entry stays as it was
            raise
        shutil.rmtree(doomed, ignore_errors=True)
        self.store.forget(node.identity)

    def _fresh_tmp(self, node: Node) -> str:
        """Clear leftovers of earlier attempts (we hold the lock) and make a build dir."""
        tmp_root = self.store.path(".tmp")
        os.makedirs(tmp_root, exist_ok=True)
        os.makedirs(self.store.path(".logs"), exist_ok=True)
        for old in os.listdir(tmp_root):
            if old.startswith(node.name + "."):
                shutil.rmtree(os.path.join(tmp_root, old), ignore_errors=True)
        return tempfile.mkdtemp(prefix=node.name + ".", dir=tmp_root)

    def _run(self, node: Node, deps: dict[str, Entry], query: str, tmp: Path, log_path: str) -> dict:
        """Call the recipe's build function with the log open, then write the manifest and return it."""
        started = time.time()
        build = node.producer.recipe.function(node.producer.build)
        context = BuildContext(node.params, deps, tmp, self.reporter, self.byquery, node.name,
                               Path(self.store.path(".cache", node.producer.recipe.name)))
        outer_log = self.reporter.log_file  # set when this build runs inside another (ctx.byquery)
        log = open(log_path, "w")  # noqa: SIM115 (closed below, where a full disk must not hide the build's error)
        self.reporter.log_file, failed = log, True
        try:
            self.reporter.log(f"building {node.name} ({node.producer.label})")
            with stopping_children(context, self.reporter), self.reporter.capturing_output():
                results = build(context)
            self.reporter.log(f"built {node.name}")
            _log_contention(log, node.name, context.measurement)
            failed = False
        except BaseException as error:
            _log_failure(self.reporter, log, error)
            raise
        finally:
            self.reporter.log_file = outer_log
            _close_log(log, failed)
        shutil.copyfile(log_path, tmp / "build.log")
        manifest = manifest_for(node, deps, context.used, results, started, query)
        if context.measurement:
            manifest["measurement"] = context.measurement
        (tmp / MANIFEST).write_text(_dump(manifest))
        return manifest


@contextmanager
def stopping_children(context: BuildContext, reporter: Reporter) -> Iterator[None]:
    """Stop the build's child processes still running when it ends (on an interruption: all of axq's)."""
    try:
        yield
    except KeyboardInterrupt:
        from axq.process import stop_children

        _log_stopped(reporter, stop_children())
        raise
    finally:
        if context.children:
            from axq.process import stop_children

            _log_stopped(reporter, stop_children(children=context.children))


def _log_stopped(reporter: Reporter, pids: list[int]) -> None:
    if pids:
        reporter.log("stopped child processes still running: pid " + ", ".join(map(str, pids)))


def _log_contention(log: Any, name: str, report: dict | None) -> None:
    """Write the contention warning into the build log (the screen gets it once the build is done)."""
    from axq.measure import contention_warning

    warning = contention_warning(name, report) if report else None
    if warning:
        log.write(f"axq: warning: {warning}\n")


def warn_if_contended(name: str, manifest: dict, reporter: Reporter) -> None:
    """Print a warning after a build whose measurement ran on a busy machine (even when quiet)."""
    report = manifest.get("measurement")
    if report:
        from axq.measure import contention_warning

        warning = contention_warning(name, report)
        if warning:
            print(f"axq: warning: {warning}", file=reporter.stream, flush=True)


def _dump(manifest: dict) -> str:
    import json

    return json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"


def _log_failure(reporter: Reporter, log: Any, error: BaseException) -> None:
    """Write the failure and (for a bug) its traceback to the log, if the disk still takes them."""
    try:
        reporter.log(f"FAILED: {type(error).__name__}: {error}")
        if not isinstance(error, (AxqError, KeyboardInterrupt)):
            import traceback

            traceback.print_exception(error, file=log)
    except OSError:  # the disk is full: the build's own error is the news
        pass


def _close_log(log: Any, failing: bool) -> None:
    """Close the build log; when the build failed already, a log that can't be flushed must not hide why."""
    try:
        log.close()
    except OSError:
        if not failing:
            raise


# errno -> what it means for a build; EACCES and EPERM count only with a path (not a signal to a process)
FAULTS = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "disk quota exceeded",
          errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "permission denied"}
# What torch.save raises when its writer fails (no errno): "PytorchStreamWriter failed writing file data/0:
# file write failed" in some versions, "[enforce fail at inline_container.cc:...] . unexpected pos 576 vs 534"
# (from "basic_ios::clear: iostream error") in others.
WRITE_FAILED = ("PytorchStreamWriter failed", "file write failed", "iostream error", "inline_container.cc")
FULL_BELOW = 1 << 20  # bytes free on the build's disk under which a failed write means a full disk


def environment_fault(error: BaseException, tmp: str, root: str) -> str | None:
    """Say what in the machine stopped a build (disk full, read-only, permission denied), or None.

    Looks through the error's causes for an OSError with a telling errno; a write failure
    without one (a C++ writer's, as torch.save's) is a full disk if the build's disk is full.
    """
    if isinstance(error, (AxqError, KeyboardInterrupt)):
        return None  # explained already (a nested build's), or not the machine
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.errno in FAULTS and (cause.filename or cause.errno in DISK_FULL
                                                                     or cause.errno == errno.EROFS):
            return _fault_text(cause, tmp, root)
    if any(isinstance(c, RuntimeError) and any(w in str(c) for w in WRITE_FAILED) for c in _causes(error)):
        return f"{FAULTS[errno.ENOSPC]} holding {root}" if _disk_full(tmp) else None
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """Yield an error and what caused it, as its traceback would show them."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _fault_text(error: OSError, tmp: str, root: str) -> str:
    """Say an OS error in a user's words, naming the path (the collection's, for a file of the build)."""
    cause = FAULTS[error.errno or 0]
    if error.errno in DISK_FULL:
        return f"{cause} holding {root}"
    path = os.fspath(error.filename) if error.filename else tmp
    return f"{cause}: {root if path.startswith(tmp) else path}"


def _disk_full(path: str) -> bool:
    """Say whether the disk holding path has (almost) no space left."""
    try:
        found = os.statvfs(path)
    except OSError:
        return False
    return found.f_bavail * found.f_frsize < FULL_BELOW


def _explain(error: BaseException, node: Node, log_path: str, fault: str | None = None) -> BaseException:
    """Turn a build failure into the error the user sees, naming (and carrying) the log."""
    if fault:
        explained: BaseException = BuildError(f"building {node.name} failed: {fault}; nothing was kept; "
                                              f"log: {log_path}")
    elif isinstance(error, KeyboardInterrupt):
        message = f"interrupted while building {node.name}; nothing was kept; log: {log_path}"
        explained = Interrupted(message)
    elif isinstance(error, AxqError):
        explained = BuildError(f"building {node.name} failed: {error}; log: {log_path}")
        explained.exit_code = max(error.exit_code, 1)  # type: ignore[attr-defined]
    else:
        error.add_note(f"axq: building {node.name} failed; log: {log_path}")
        explained = error
    explained.axq_log = log_path  # type: ignore[attr-defined]
    return explained


def stale_reason(store: Store, manifest: dict, _seen: dict[str, str | None] | None = None) -> str | None:
    """Say why a built entry can no longer be trusted, or None.

    Stale: it is superseded (its recipe's version or code changed since it was built, see
    superseded_reason), or an entry it depends on or used is gone, was built again since, was
    made by an older version of its recipe, or is itself stale. Cheap: one manifest read per
    entry of its closure, and stat calls for the code (axq.codeid caches its digests).
    """
    seen = {} if _seen is None else _seen
    name = manifest.get("name", "")
    if name not in seen:
        seen[name] = None  # a cycle cannot happen, but must not recurse forever
        seen[name] = _own_staleness(store, manifest) or _inputs_staleness(store, manifest, seen)
    return seen[name]


def superseded_reason(store: Store, manifest: dict, _seen: dict[str, str | None] | None = None) -> str | None:
    """Say why a built entry is no longer what its query means, or None.

    Superseded: its recipe's version or code changed since it was built, or so did a
    dependency's (deps are in the identity): the same query now means a new entry, and this
    one stays a true record of the old code. Entries it only `used` make it stale, not superseded.
    """
    seen = {} if _seen is None else _seen
    name = manifest.get("name", "")
    if name not in seen:
        seen[name] = None
        seen[name] = _own_staleness(store, manifest, gone=False) or _deps_superseded(store, manifest, seen)
    return seen[name]


def _deps_superseded(store: Store, manifest: dict, seen: dict[str, str | None]) -> str | None:
    """Say which dependency of an entry is superseded, and why."""
    for recorded in manifest.get("deps", {}).values():
        current = store.read_manifest(recorded.get("name", ""))
        inner = superseded_reason(store, current, seen) if current else None
        if inner:
            return inner if inner.startswith("dependency ") else f"dependency {inner}"
    return None


def _own_staleness(store: Store, manifest: dict, gone: bool = True) -> str | None:
    """Say whether the entry's recipe is now at another version, runs other code (or is gone)."""
    name, built = str(manifest.get("recipe")), manifest.get("recipe_version")
    recipe = _recipe_now(name, store)
    if recipe is None:
        return f"its recipe `{name}` is gone" if gone else None
    if recipe.version != built:
        return f"built by {name} version {built}, now {recipe.version}"
    return code_change(name, manifest, recipe_code(recipe.path))


NO_CODE_RECORD = "built before axq recorded the code a build ran"  # manifests older than code digests


def code_change(name: str, manifest: dict, code: Code) -> str | None:
    """Say how the code of recipe `name` differs from the code an entry was built by: `name (files changed)`."""
    recorded = manifest.get("code")
    if not isinstance(recorded, dict):
        return f"{name} ({NO_CODE_RECORD})"
    changes = code.changes(recorded)
    return f"{name} ({shown_changes(changes)})" if changes else None


def shown_changes(changes: list[str], most: int = 3) -> str:
    """Join the first few changed files: `a changed, b added and 2 more`."""
    more = f" and {len(changes) - most} more" if len(changes) > most else ""
    return ", ".join(changes[:most]) + more


def _recipe_now(name: str, store: Store) -> Recipe | None:
    """Return recipe `name` as it is now on the search path (or in the collection's recipe roots)."""
    from axq.recipe import all_recipes

    return next((r for r in all_recipes(store.recipe_roots()) if r.name == name), None)


def _inputs_staleness(store: Store, manifest: dict, seen: dict[str, str | None]) -> str | None:
    """Say which dependency or used entry makes this one stale, or None."""
    inputs = [*(("dependency", d) for d in manifest.get("deps", {}).values()),
              *(("used entry", _used_record(k, u)) for k, u in manifest.get("used", {}).items())]
    for kind, recorded in inputs:
        problem = _input_problem(store, recorded, seen)
        if problem:
            return f"{kind} {recorded['name']} {problem}"
    return None


def _used_record(name: str, recorded: Any) -> dict:
    """Read a `used` record: a stamp, or (entries built before stamps) a bare identity."""
    return {"name": name, **recorded} if isinstance(recorded, dict) else {"name": name, "identity": recorded}


def _input_problem(store: Store, recorded: dict, seen: dict[str, str | None]) -> str | None:
    """Compare an input as recorded with what the collection holds now."""
    current = store.read_manifest(recorded["name"])
    if current is None:
        return "is gone"
    if current.get("identity") != recorded.get("identity"):
        return "was replaced by another entry"
    if "built" in recorded and current.get("provenance", {}).get("finished") != recorded["built"]:
        return "was built again since"
    version = recorded.get("recipe_version")
    if version is not None and version != current.get("recipe_version"):
        return f"was built by {current.get('recipe')} version {current.get('recipe_version')}, not {version}"
    inner = stale_reason(store, current, seen)
    return f"is stale ({inner})" if inner else None


def log_path_of(error: BaseException) -> str | None:
    """Return the build log a failure points to, if it came from a build."""
    return getattr(error, "axq_log", None)

