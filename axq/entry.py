"""Read a built entry: its manifest, files, dependencies and getters.

On the cached-query path: imports nothing heavy at the top. A getter is a function in the
entry's recipe `code.py` (named in its manifest), else a stored result, else a parameter.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

from axq import locations
from axq.errors import EntryNotFound, GetterError, ManifestError, did_you_mean
from axq.store import Store

# Manifest fields readable with `get` besides getters, results and parameters.
MANIFEST_KEYS = ("name", "identity", "recipe", "tags", "params", "results", "deps", "provenance")


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
    def path(self) -> Any:
        """Return the entry directory as a pathlib.Path."""
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

    def code(self) -> Any:
        """Import and return this entry's recipe code module."""
        directory = locations.recipe_dir(self.manifest["recipe"]) or self.manifest["recipe_path"]
        return load_code(os.path.join(directory, "code.py"))

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call `function` from the recipe's code.py with this entry first."""
        fn = getattr(self.code(), function, None)
        if not callable(fn):
            raise GetterError(f"recipe `{self.manifest['recipe']}` has no function `{function}`")
        return fn(self, *args, **kwargs)

    def keys(self) -> list[str]:
        """List every key `get` answers."""
        return [*self.manifest.get("getters", []), *self.results, *self.params, *MANIFEST_KEYS, "path"]

    def get(self, key: str) -> Any:
        """Return a getter's value, else a result, else a parameter, else a manifest field."""
        if key in self.manifest.get("getters", ()):
            return self.call(key)
        for source in (self.results, self.params):
            if key in source:
                return source[key]
        if key == "path":
            return self.store.path(self.name)
        if key in MANIFEST_KEYS:
            return self.manifest.get(key)
        raise GetterError(f"entry `{self.name}` has no getter `{key}`" + did_you_mean(key, self.keys()))


_LOADED: dict[str, ModuleType] = {}


def load_code(path: str) -> ModuleType:
    """Import a recipe's code.py by path, once per process (no importlib: it is slow)."""
    if path in _LOADED:
        return _LOADED[path]
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
