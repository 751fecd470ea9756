"""What a recipe may use of the kernel: a built `Entry` and the `BuildContext` of a build.

This one module is the recipe interface, used alike by the kernel, by a recipe's child
processes (`Entry.at(path)`), by tests and by benchmarks. It is on the cached-query path:
it imports nothing heavy at the top. A getter is a function named in the recipe's
`recipe.json` as it is now (read when the getter is asked for, so a getter added later
works on old entries), found in the recipe's `getters.py` if it has one, else `code.py`;
then a stored result, then a parameter.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

from axq import locations
from axq.errors import EntryNotFound, GetterError, ManifestError, UnknownGetter, did_you_mean
from axq.store import Store, read_text

TYPE_CHECKING = False  # typing costs milliseconds on the cached path; annotations are strings anyway
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path
    from typing import Any, TypeAlias, TypeVar

    T = TypeVar("T")

    from axq.measure import Measurement
    from axq.process import Child, RunningChild
    from axq.progress import Reporter

    # A build's parameters: each checked and normalised against its recipe.json declaration
    # ("int", "float", "number", "bool", "str", "list", "any"; None where nullable). Values are
    # Any to mypy (their types are declared in JSON, not Python); a build must not change them.
    Params: TypeAlias = Mapping[str, Any]

# Manifest fields readable with `get` besides getters, results and parameters.
MANIFEST_KEYS = ("name", "identity", "recipe", "tags", "params", "results", "deps", "provenance", "measurement")
GETTERS_FILE, CODE_FILE = "getters.py", "code.py"


class Entry:
    """A complete entry in a work collection."""

    def __init__(self, store: Store, name: str, manifest: dict) -> None:
        self.store, self.name, self.manifest = store, name, manifest

    @classmethod
    def load(cls, store: Store, name: str) -> Entry:
        """Return entry `name` of the store, or raise EntryNotFound with suggestions."""
        manifest = store.read_manifest(name)
        if manifest is None:
            raise EntryNotFound(f"no entry `{name}` in {store.root}" + did_you_mean(name, store.names()))
        return cls(store, name, manifest)

    @classmethod
    def at(cls, path: str | os.PathLike) -> Entry:
        """Return the entry in directory `path` (for code running outside the kernel)."""
        path = os.path.abspath(os.fspath(path))
        return cls.load(Store(os.path.dirname(path)), os.path.basename(path))

    def __repr__(self) -> str:
        return f"Entry({self.name!r})"

    @property
    def path(self) -> Path:
        """Return the entry directory."""
        from pathlib import Path

        return Path(self.store.path(self.name))

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self.manifest.get("tags", ()))

    @property
    def params(self) -> dict[str, Any]:
        return self.manifest.get("params", {})

    @property
    def results(self) -> dict[str, Any]:
        return self.manifest.get("results") or {}

    @property
    def identity(self) -> str:
        return self.manifest["identity"]

    @property
    def invalid_reason(self) -> str | None:
        """Return why the entry is marked invalid (its build said so), or None."""
        results = self.results
        if results.get("valid", True) is False:
            return str(results.get("invalid_reason") or "marked invalid by its build")
        return None

    def dep(self, name: str) -> Entry:
        """Return the dependency called `name`."""
        deps = self.manifest.get("deps", {})
        if name not in deps:
            raise GetterError(f"entry `{self.name}` has no dependency `{name}`" + did_you_mean(name, deps))
        return Entry.load(self.store, deps[name]["name"])

    def recipe_dir(self) -> str:
        """Return the directory of this entry's recipe as it is now (else where it was built)."""
        return locations.recipe_dir(self.manifest["recipe"]) or self.manifest["recipe_path"]

    def code(self) -> ModuleType:
        """Import and return this entry's recipe code module."""
        return load_code(os.path.join(self.recipe_dir(), CODE_FILE))

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call `function` from the recipe's code.py with this entry first."""
        fn = getattr(self.code(), function, None)
        if not callable(fn):
            raise GetterError(f"recipe `{self.manifest['recipe']}` has no function `{function}`")
        return fn(self, *args, **kwargs)

    def getters(self) -> list[str]:
        """Return the getter names the entry's recipe declares now."""
        import json

        text = read_text(os.path.join(self.recipe_dir(), locations.RECIPE_FILE))
        return list(json.loads(text).get("getters", [])) if text else []

    def getter(self, name: str) -> Callable[[Entry], Any]:
        """Return getter `name` from the recipe's getters.py (else code.py)."""
        directory = self.recipe_dir()
        module = GETTERS_FILE if os.path.isfile(os.path.join(directory, GETTERS_FILE)) else CODE_FILE
        fn = getattr(load_code(os.path.join(directory, module)), name, None)
        if not callable(fn):
            raise GetterError(f"recipe `{self.manifest['recipe']}` declares getter `{name}` "
                              f"but {module} has no such function")
        return fn

    def keys(self) -> list[str]:
        """List every key `get` answers."""
        return [*self.getters(), *self.results, *self.params, *MANIFEST_KEYS, "path"]

    def get(self, key: str) -> Any:
        """Return a getter's value, else a result, else a parameter, else a manifest field."""
        if key in self.getters():
            return self.getter(key)(self)
        for source in (self.results, self.params):
            if key in source:
                return source[key]
        if key == "path":
            return self.store.path(self.name)
        if key in MANIFEST_KEYS:
            return self.manifest.get(key)
        getters = ", ".join(self.getters()) or "none"
        raise UnknownGetter(f"entry `{self.name}` has no getter `{key}`" + did_you_mean(key, self.keys())
                          + f" (its getters: {getters}; also its results, parameters and `path`)")


class BuildContext:
    """What a recipe's build function gets: parameters, dependencies, a directory, a log.

    A build function is `def build(ctx: BuildContext) -> dict | None` (import the class under
    TYPE_CHECKING: the annotations are strings). What a recipe may use:

    - `params` (Params): the rule's parameters, checked and normalised against recipe.json
      (an int parameter holds an int, a float one a float, a nullable one may hold None);
      read-only (a Mapping: mypy refuses a change).
    - `deps`: the built dependencies by the names recipe.json gives them (`ctx.deps["model"]`).
    - `path`: the directory being built (a temporary one, renamed into place when the build
      succeeds); write the entry's files here.
    - `name`: the entry's name.
    - `cache`: the recipe's folder in the work collection that outlives its entries
      (`.cache/RECIPE/`, made on first use by the recipe): what a build may reuse to save time
      but would measure again without (loadgen_program's timed targets), never a result; wiping
      the collection removes it, and nothing built is lost with it.
    - `log(message)`, `progress(items, total, desc)`: the build log, and a progress display.
    - `byquery(query, overrides)`: an entry found out only from results (see its docstring).
    - `measuring(label, threshold)`: the context manager for the timed part of a build.
    - `spawn(args, **popen_kwargs)`: a child process that never outlives the build.
    - `child_environment()`, `python_starter(script, args, preload, label)`: a Python child
      that imports axq and the recipe libraries, started warm (forked from a zygote) where
      it can.

    Every child leads a process group of its own (signal the group to stop what it started)
    and is stopped, if it still runs, when the build ends. The rest (`reporter`, `used`,
    `children`, `measurements`, `measurement`) is the builder's.
    """

    def __init__(self, params: dict[str, Any], deps: dict[str, Entry], path: Path, reporter: Reporter,
                 fetch: Callable[[str, dict[str, Any] | None], Entry], name: str, cache: Path) -> None:
        self.params: Params = dict(params)
        self.deps = deps
        self.path = path
        self.reporter = reporter
        self.name = name
        self.cache = cache
        self.used: dict[str, Entry] = {}
        self.children: list[Child] = []
        self.measurements: list[Measurement] = []
        self._fetch = fetch

    def log(self, message: str) -> None:
        """Write a timestamped line to the build log (and the screen unless quiet)."""
        self.reporter.log(message)

    def progress(self, items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """Wrap an iterable with progress display."""
        return self.reporter.progress(items, total=total, desc=desc)

    def byquery(self, query: str, overrides: dict[str, Any] | None = None) -> Entry:
        """Fetch (building if needed) an entry that a build finds out only from results.

        For inputs that depend on results (a peak search's probes). Declare what the
        parameters determine as `deps` or `planned_deps` instead: those are in the identity
        and in `axq plan`. A fetched entry is recorded as `used` in the manifest: `axq rm`
        will not remove it from under this one, and if it is gone or its recipe's version
        changes, this entry is stale and is built again.
        """
        entry = self._fetch(query, overrides)
        self.used[entry.name] = entry
        return entry

    def spawn(self, args: Any, **popen_kwargs: Any) -> subprocess.Popen:
        """Start a child process (as subprocess.Popen does) that does not outlive the build.

        It dies with axq however axq dies (see axq.process), and the builder stops it, if it
        still runs, when the build ends, before reporting a failure or an interruption.
        """
        from axq import process

        child = process.spawn(args, **popen_kwargs)
        self.children.append(child)
        return child

    def child_environment(self) -> dict[str, str]:
        """Return this process's environment with axq and the recipe libraries on PYTHONPATH."""
        return child_environment()

    def python_starter(self, script: str | os.PathLike, args: list[str], preload: tuple[str, ...] = (),
                       label: str = "child") -> Callable[[], RunningChild]:
        """Return what starts `python script args` in `path`, a child as spawn's are; get it ready now.

        The child has `child_environment()`, /dev/null as stdin, and its output (stdout and
        stderr, text, line-buffered) in its `stdout`. With `preload` (module names), the
        child starts warm: a zygote that has imported those modules (see axq.zygote) is made
        ready here, so call this before `measuring`, and the start forks the script from it.
        Where warm starts are off (AXQ_WARM_START=0, not Linux) or the zygote cannot start or
        has died, the start is a fresh process and the log says why; `label` names the child
        in the log.
        """
        import subprocess

        from axq import zygote

        env, script, args = child_environment(), os.fspath(script), list(args)

        def cold() -> RunningChild:
            return self.spawn([sys.executable, script, *args], cwd=self.path, env=env, text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)

        if not preload or not zygote.enabled():
            return cold
        try:
            warm = zygote.ready(preload, env)
        except zygote.Unavailable as why:
            self.log(f"starting the {label} cold: {why}")
            return cold

        def forked() -> RunningChild:
            try:
                child = warm.start(script, args, self.path)
            except zygote.Unavailable as why:
                self.log(f"starting the {label} cold: {why}")
                return cold()
            self.children.append(child)
            self.reporter.detail(f"{label} pid {child.pid}: started warm, forked by zygote pid {warm.process.pid}")
            return child

        return forked

    def measuring(self, label: str | None = None, threshold: float | None = None) -> Measurement:
        """Return the context manager for the timed part of a build (see axq.measure).

        Inside it the build holds the machine-wide measurement lock (waiting, and saying for
        whom, while another measures); on exit it knows how busy the machine was apart from
        this build. The builder records the report as `measurement` in the manifest and warns
        when the machine was busier than `threshold` (a share of the machine, default 5%).
        Use it for work whose time is its result, not for data sets, models or accuracy runs.
        """
        from axq.measure import DEFAULT_THRESHOLD, measurement

        chosen = DEFAULT_THRESHOLD if threshold is None else threshold
        timed = measurement(label or self.name, log=self.log, threshold=chosen)
        self.measurements.append(timed)
        return timed

    @property
    def measurement(self) -> dict[str, Any] | None:
        """Return the report of the build's measurement (of several, the most contended), or None."""
        reports = [m.report for m in self.measurements if m.report is not None]
        return max(reports, key=lambda r: r.get("other_cpu_share") or 0.0) if reports else None


def child_environment() -> dict[str, str]:
    """Return this process's environment with axq and the recipe libraries importable (PYTHONPATH)."""
    paths = [*locations.library_dirs(), os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
             os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


_LOADED: dict[str, ModuleType] = {}
_STAMPS: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) when loaded: an edited file loads again


def load_code(path: str) -> ModuleType:
    """Import a recipe's code.py by path, once per process while it is unchanged (no importlib: it is slow)."""
    try:
        stat = os.stat(path)
        stamp = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        stamp = (-1, -1)
    if path in _LOADED and _STAMPS.get(path) == stamp:
        return _LOADED[path]
    _STAMPS[path] = stamp
    use_libraries()
    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
    except FileNotFoundError:
        raise ManifestError(os.path.basename(os.path.dirname(path)), "code.py", f"missing {path}") from None
    module = ModuleType(f"axq_recipe_{os.path.basename(os.path.dirname(path))}_{len(_LOADED)}", path)
    module.__file__ = path
    sys.modules[module.__name__] = module
    exec(compile(source, path, "exec"), module.__dict__)
    _LOADED[path] = module
    return module


def use_libraries() -> None:
    """Put the recipe roots' `lib/` directories on sys.path (shared recipe code, see docs/recipes.md)."""
    for lib in locations.library_dirs():
        if lib not in sys.path:
            sys.path.insert(0, lib)


def forget_loaded_code() -> None:
    """Forget imported recipe code (for tests that swap recipe directories)."""
    _LOADED.clear()
