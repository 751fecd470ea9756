"""Digest the code a recipe runs: every file of its folder and the library modules they import.

A recipe's code is the files of its own folder (recipe.json, code.py, getters.py, a
harness, ...; not `__pycache__` nor hidden files) and the modules of the shared recipe
library (the `lib/` folders of the recipe roots, see axq.locations.library_dirs) that
those files import, transitively. Imports are found statically with `ast`: `import a.b`,
`from a import b`, relative imports inside the library, and strings naming a library
module (`"axq_mlperf.system:fingerprint"` in recipe.json, `python -m axq_mlperf.remote`).
Modules outside the library (the standard library, third-party packages, axq itself) are
not recipe code and are left out.

Each file is keyed by its path in its recipe root (`loadgen_program/harness.py`,
`lib/axq_mlperf/backends.py`), so a recipe keeps its identity wherever its root lies, and
digested by content (SHA-256). File digests and import lists are cached by (path, size,
mtime_ns) in a per-user cache file, so only edited files are read again; a file changed
in the last few seconds is not cached (its mtime may not show a second edit yet).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from axq import locations
from axq.identity import code_digest
from axq.store import read_text, write_atomically

LIB = "lib"
SETTLE_S = 3.0  # a file younger than this is hashed but not cached: a same-size edit may keep its mtime
_MODULE_TEXT = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?::\w+)?")  # `pkg.mod` or `pkg.mod:function`
Ref = tuple[int, str, tuple[str, ...]]  # (relative level, module, names imported from it)


@dataclass(frozen=True)
class Code:
    """The code of one recipe: each file's key and SHA-256, and where each file lies now."""

    files: dict[str, str]  # key (path in its recipe root) -> sha256 of the content
    paths: dict[str, str]  # key -> absolute path now
    root: str  # the recipe's root (where a key no longer found is shown)

    @property
    def digest(self) -> str:
        """Return the digest of the whole code (what goes into the identity)."""
        return code_digest(self.files)

    def shown(self, key: str) -> str:
        """Return how to show a file to a user: `entries/loadgen_program/harness.py`."""
        return shown_path(self.paths.get(key) or os.path.join(self.root, key))

    def changes(self, recorded: dict[str, str]) -> list[str]:
        """Name the files whose content differs from a recorded code: `entries/x/code.py changed`."""
        keys = sorted(set(recorded) | set(self.files))
        return [f"{self.shown(key)} {_change(recorded.get(key), self.files.get(key))}"
                for key in keys if recorded.get(key) != self.files.get(key)]


def _change(old: str | None, new: str | None) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


def shown_path(path: str) -> str:
    """Return a path relative to axq's source checkout when it lies inside it, else as it is."""
    inside = os.path.relpath(path, locations.SOURCE_ROOT)
    return path if inside.startswith("..") else inside


def recipe_code(recipe_dir: str | os.PathLike) -> Code:
    """Return the code of the recipe in `recipe_dir`: its files and the library modules they import.

    Remembered in the process while no file or folder it was made of changed (stat only).
    """
    directory = os.path.abspath(os.fspath(recipe_dir))
    libs = [os.path.abspath(lib) for lib in reversed(locations.library_dirs())]  # in sys.path's order
    remembered = _REMEMBERED.get((directory, *libs))
    if remembered and _stamp(remembered[0]) == remembered[1]:
        return remembered[2]
    code = _read_code(directory, libs)
    watched = [*code.paths.values(), *_folders(directory, *libs)]
    stamp = _stamp(watched)
    if stamp is not None:
        _REMEMBERED[(directory, *libs)] = (watched, stamp, code)
    return code


def _folders(*tops: str) -> list[str]:
    """Return the folders under the given ones, themselves included (a file added changes a folder's mtime)."""
    found = []
    for top in tops:
        found.append(top)
        for path, names, _ in os.walk(top):
            names[:] = [n for n in names if not n.startswith(".") and n != "__pycache__"]
            found.extend(os.path.join(path, n) for n in names)
    return found


def _stamp(paths: list[str]) -> tuple | None:
    """Return (size, mtime_ns) of each path, or None if one is missing or too young to trust its mtime."""
    stamp = []
    settled = time.time() - SETTLE_S
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if stat.st_mtime > settled:
            return None
        stamp.append((stat.st_size, stat.st_mtime_ns))
    return tuple(stamp)


def _read_code(directory: str, libs: list[str]) -> Code:
    """Find and digest the files of a recipe's code (digests from the cache where their stat is unchanged)."""
    root = os.path.dirname(directory)
    library = _Library(libs)
    files: dict[str, str] = {}
    paths: dict[str, str] = {}
    todo: list[tuple[str, str, str | None]] = [(os.path.relpath(p, root), p, None) for p in folder_files(directory)]
    while todo:
        key, path, package = todo.pop()
        if key in files:
            continue
        digest, refs = _CACHE.facts(path)
        files[key], paths[key] = digest, path
        todo.extend(library.imported(refs, package))
    _CACHE.save()
    return Code(files, paths, root)


def folder_files(directory: str) -> Iterator[str]:
    """Yield the files under a folder, sorted, skipping `__pycache__` and hidden names."""
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".") or name == "__pycache__":
            continue
        if os.path.isdir(path):
            yield from folder_files(path)
        elif os.path.isfile(path):
            yield path


class _Library:
    """The recipe library folders, in import order, and the modules found in them so far."""

    def __init__(self, libs: list[str]) -> None:
        self.libs = libs
        self.found: dict[str, tuple[str, str, str] | None] = {}  # module -> (key, path, package)

    def imported(self, refs: list[Ref], package: str | None) -> Iterator[tuple[str, str, str]]:
        """Yield (key, path, package) of each library module that a file's import references name."""
        for level, module, names in set(refs):
            if level and package is None:
                continue  # a recipe's own files are loaded by path: a relative import means nothing there
            base = _absolute(level, module, package or "")
            for candidate in [*_prefixes(base), *(f"{base}.{n}" for n in names if n != "*")] if base else []:
                found = self.module(candidate)
                if found:
                    yield found

    def module(self, name: str) -> tuple[str, str, str] | None:
        """Return (key, path, package) of a dotted module in the library, or None if it is not library code."""
        if name not in self.found:
            self.found[name] = self._find(name)
        return self.found[name]

    def _find(self, name: str) -> tuple[str, str, str] | None:
        relative = name.replace(".", os.sep)
        for lib in self.libs:
            for candidate, package in ((relative + ".py", name.rpartition(".")[0]),
                                       (os.path.join(relative, "__init__.py"), name)):
                path = os.path.join(lib, candidate)
                if os.path.isfile(path):
                    return os.path.join(LIB, candidate), path, package
        return None


def _absolute(level: int, module: str, package: str) -> str | None:
    """Resolve a relative import against its package, as Python does (None if it climbs out)."""
    if not level:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    return ".".join([*parts[:len(parts) - level + 1], *([module] if module else [])]) or None


def _prefixes(module: str) -> list[str]:
    """Return `a`, `a.b`, `a.b.c` for `a.b.c`: importing a module imports its packages."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def scan(path: str, data: bytes) -> list[Ref]:
    """Return the import references of a file: a Python file's imports and module-naming strings."""
    if path.endswith(".json"):
        try:
            return _text_refs(_strings(json.loads(data)))
        except ValueError:
            return []
    if not path.endswith(".py"):
        return []
    try:
        tree = ast.parse(data, path)
    except (SyntaxError, ValueError):
        return []  # the build will say what is wrong with it
    return [*_import_refs(tree), *_text_refs(n.value for n in ast.walk(tree)
                                              if isinstance(n, ast.Constant) and isinstance(n.value, str))]


def _import_refs(tree: ast.AST) -> Iterator[Ref]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((0, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module or "", tuple(alias.name for alias in node.names)


def _text_refs(texts: Any) -> list[Ref]:
    return [(0, text.partition(":")[0], ()) for text in texts if _MODULE_TEXT.fullmatch(text)]


def _strings(data: Any) -> Iterator[str]:
    """Yield every string in parsed JSON, keys included."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def cache_file() -> str:
    """Return the per-user cache of file digests (`$XDG_CACHE_HOME/axq/code-digests.json`)."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(home, "axq", "code-digests.json")


class _DigestCache:
    """File digests and import references by (path, size, mtime_ns), kept in the per-user cache file."""

    def __init__(self) -> None:
        self.known: dict[str, list] | None = None  # path -> [size, mtime_ns, sha256, refs]
        self.dirty = False

    def facts(self, path: str) -> tuple[str, list[Ref]]:
        """Return a file's SHA-256 and import references, from the cache while its stat is unchanged."""
        known = self._load()
        stat = os.stat(path)
        cached = known.get(path)
        if cached and cached[:2] == [stat.st_size, stat.st_mtime_ns]:
            return cached[2], [(level, module, tuple(names)) for level, module, names in cached[3]]
        with open(path, "rb") as handle:
            data = handle.read()
        digest, refs = hashlib.sha256(data).hexdigest(), scan(path, data)
        if time.time() - stat.st_mtime > SETTLE_S:
            known[path] = [stat.st_size, stat.st_mtime_ns, digest, [list(r) for r in refs]]
            self.dirty = True
        return digest, refs

    def _load(self) -> dict[str, list]:
        if self.known is None:
            try:
                loaded = json.loads(read_text(cache_file()) or "{}")
            except ValueError:
                loaded = {}
            self.known = loaded if isinstance(loaded, dict) else {}
        return self.known

    def save(self) -> None:
        """Write the cache back if it learnt something, dropping files that are gone (a cache: failures pass)."""
        if not self.dirty or self.known is None:
            return
        self.known = {path: facts for path, facts in self.known.items() if os.path.exists(path)}
        with contextlib.suppress(OSError):
            write_atomically(cache_file(), json.dumps(self.known, separators=(",", ":")))
        self.dirty = False


_CACHE = _DigestCache()
_REMEMBERED: dict[tuple[str, ...], tuple[list[str], tuple, Code]] = {}  # (folder, *libs) -> (watched, stamp, code)
