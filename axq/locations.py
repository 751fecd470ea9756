"""Find the recipe directories and the work collection.

Kept free of heavy imports: the cached-query path calls it on every run.
"""

from __future__ import annotations

import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(PACKAGE_DIR)
RECIPE_FILE = "recipe.json"


def _shipped(name: str) -> str:
    """Return a data folder of axq: beside the package in a checkout, inside it in a wheel (`_name`)."""
    checkout = os.path.join(SOURCE_ROOT, name)
    return checkout if os.path.isdir(checkout) else os.path.join(PACKAGE_DIR, "_" + name)


def builtin_entries() -> str:
    """Return the built-in recipes: `entries/` of the checkout, or the copy a wheel carries."""
    return _shipped("entries")


def grammar_dir() -> str:
    """Return the lark grammars: `grammar/` of the checkout, or the copy a wheel carries."""
    return _shipped("grammar")


def search_path() -> list[str]:
    """Return the recipe roots: built-in `entries/`, then those on AXQ_ENTRIES."""
    extra = [p for p in os.environ.get("AXQ_ENTRIES", "").split(os.pathsep) if p]
    return [builtin_entries(), *extra]


def library_dirs() -> list[str]:
    """Return the `lib/` directories of the recipe roots: shared recipe code, importable by name."""
    return [lib for lib in (os.path.join(root, "lib") for root in search_path()) if os.path.isdir(lib)]


def default_work_collection() -> str:
    """Return `work_collection/` of a source checkout, else a per-user directory."""
    if os.path.isfile(os.path.join(SOURCE_ROOT, "pyproject.toml")):
        return os.path.join(SOURCE_ROOT, "work_collection")
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data_home, "axq", "work_collection")


def work_collection(explicit: str | os.PathLike | None = None) -> str:
    """Return the work collection: the explicit one, AXQ_WORK_COLLECTION, or the default."""
    chosen = explicit or os.environ.get("AXQ_WORK_COLLECTION") or default_work_collection()
    return os.path.abspath(os.fspath(chosen))


def recipe_fingerprint() -> str:
    """Summarise the recipe code cheaply (each file's path, size and mtime), to key the query memo.

    Every file of every recipe folder and of every `lib/` counts, not only those a recipe
    imports (that needs a parse; see axq.codeid): an edit anywhere costs one resolution,
    never a wrong answer. Stat calls only, no reading: this runs on every cached query.
    """
    parts = []
    for root in search_path():
        try:
            folders = sorted((item.name, item.path) for item in os.scandir(root) if item.is_dir())
        except OSError:
            parts.append(root + ":absent")
            continue
        parts.append(root)
        for name, folder in folders:
            stats = _file_stats(folder, name)
            if name == "lib" or f"{name}/{RECIPE_FILE}" in stats:
                parts.extend(f"{path}:{size}" for path, size in sorted(stats.items()))
    return "|".join(parts)


def _file_stats(folder: str, shown: str) -> dict[str, str]:
    """Map each file under a folder (not `__pycache__` nor hidden names) to `size:mtime_ns`."""
    found: dict[str, str] = {}
    try:
        listing = os.scandir(folder)
    except OSError:
        return {shown: "unreadable"}
    with listing:
        for item in listing:
            name = item.name
            if name[0] == "." or name == "__pycache__":
                continue
            try:
                if item.is_dir():
                    found.update(_file_stats(item.path, f"{shown}/{name}"))
                else:
                    stat = item.stat()
                    found[f"{shown}/{name}"] = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                continue
    return found


def recipe_dir(name: str) -> str | None:
    """Return the directory of the first recipe called `name` on the search path."""
    for root in search_path():
        candidate = os.path.join(root, name)
        if os.path.isfile(os.path.join(candidate, RECIPE_FILE)):
            return candidate
    return None
