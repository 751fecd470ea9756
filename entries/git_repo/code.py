"""Clone a git repository into the work collection; a collection's recipes join its search path.

As axs does (`axs byquery git_repo,collection,repo_name=axs2mlperf`), but from an explicit
`url=` (a URL or a local path): axq ships no registry of repository names, and nothing is
fetched at run time unless the user names where from. The clone's recipes are those of its
`entries/` folder, else those at its top; the kernel adds them to this work collection's
search path when the entry is built (`recipe_root` in the results) and drops them when it is
removed. Nothing in the clone runs except the recipes a query selects.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from axq.entry import BuildContext, Entry
from axq.errors import BuildError, ParameterError

CLONE = "repo"


def check(params: dict) -> None:
    """Refuse a query that says nothing about where to clone from."""
    if not params["url"]:
        name = params["repo_name"] or "..."
        raise ParameterError(f"say where to clone from: git_repo,...,url=<git URL or path> (repo_name={name} "
                             "alone names no place: axq keeps no registry of repositories)")


def estimate(params: dict) -> float:
    return 5.0


def build(ctx: BuildContext) -> dict:
    """Clone, check out, and say where the recipes are."""
    params, target = ctx.params, ctx.path / CLONE
    url = _source(params["url"])
    ctx.log(f"cloning {url}")
    _git(["clone", "--quiet", url, str(target)], f"{url} is not a git repository one can clone")
    if params["checkout"]:
        _git(["-C", str(target), "checkout", "--quiet", params["checkout"]],
             f"no checkout `{params['checkout']}` in {url}")
    commit = _git(["-C", str(target), "rev-parse", "HEAD"], "cannot read the cloned commit").strip()
    return {"commit": commit, "url": url, "recipe_root": _recipe_root(target)}


def _source(url: str) -> str:
    """Return a local path made absolute (git resolves relative ones against its own cwd), else the URL."""
    return os.path.abspath(url) if os.path.isdir(url) else url


def _git(args: list[str], problem: str) -> str:
    """Run git; a failure is a BuildError saying `problem` and git's own last line."""
    found = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if found.returncode != 0:
        said = (found.stderr.strip().splitlines() or ["no message"])[-1]
        raise BuildError(f"{problem} ({said})")
    return found.stdout


def _recipe_root(clone: Path) -> str:
    """Return the folder of the clone holding recipes, relative to the entry."""
    root = clone / "entries" if (clone / "entries").is_dir() else clone
    if not any((d / "recipe.json").is_file() for d in root.iterdir() if d.is_dir()):
        raise BuildError(f"{clone.name} holds no recipes (no */recipe.json in entries/ or at its top)")
    return str(root.relative_to(clone.parent))


def commit(entry: Entry) -> str:
    return entry.results["commit"]


def recipes(entry: Entry) -> list[str]:
    """List the recipes this collection adds."""
    root = entry.path / entry.results.get("recipe_root", CLONE)
    return sorted(d.name for d in root.iterdir() if (d / "recipe.json").is_file())
