"""The packages: axq, its grammars, and entries/ with every folder in it (recipe code) as axq._entries.*.

pyproject.toml holds everything else; only this list needs code, so that a new recipe
folder is packaged without being named here (setuptools warns of, and will one day drop,
folders of code that are not listed as packages).
"""

from pathlib import Path

from setuptools import setup

ENTRIES = Path(__file__).parent / "entries"
FOLDERS = sorted(parts for parts in (path.relative_to(ENTRIES).parts for path in ENTRIES.rglob("*") if path.is_dir())
                 if not any(part == "__pycache__" or part.startswith(".") for part in parts))  # caches: .mypy_cache

setup(packages=["axq", "axq.verbs", "axq._grammar", "axq._entries", *(".".join(("axq._entries", *parts)) for parts in FOLDERS)])
