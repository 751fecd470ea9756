"""Recipe collections from git: `git_repo,collection,url=...` adds a clone's recipes to the work collection."""

from __future__ import annotations

import json
import subprocess

import pytest

import axq
from axq.errors import BuildError, ManifestError, ParameterError


def git(*args: str, cwd) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    """Make a local git repository whose entries/ folder holds one recipe, on a branch `stable`."""
    root = tmp_path / "greetings"
    recipe = root / "entries" / "greeting"
    recipe.mkdir(parents=True)
    (recipe / "recipe.json").write_text(json.dumps({
        "version": 1, "description": "A greeting from a git collection.",
        "parameters": {"who": {"type": "str", "default": "world", "description": "whom to greet"}},
        "producers": [{"tags": ["greeting"]}], "getters": ["text"]}))
    (recipe / "code.py").write_text("def build(ctx):\n    return {'text': 'hello ' + ctx.params['who']}\n\n\n"
                                    "def text(entry):\n    return entry.results['text']\n")
    git("init", "-q", "-b", "main", cwd=root)
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "greeting", cwd=root)
    git("branch", "stable", cwd=root)
    return root


def test_a_git_collection_adds_its_recipes(work, repo, axq_cli):
    with pytest.raises(Exception, match="no recipe produces tag `greeting`"):
        axq.plan("greeting")
    clone = axq.byquery(f"git_repo,collection,url={repo},checkout=stable")
    assert clone.get("recipes") == ["greeting"]
    assert axq.byquery("greeting,who=axq").get("text") == "hello axq"
    code, out, _ = axq_cli("rules", "greeting")
    assert code == 0 and "greeting" in out and str(clone.path) in out, out
    code, out, _ = axq_cli("work_collection", ",", "remove")
    assert code == 0
    with pytest.raises(Exception, match="no recipe produces tag `greeting`"):
        axq.plan("greeting")


def test_removing_the_clone_takes_its_recipes_away(work, repo):
    clone = axq.byquery(f"git_repo,collection,url={repo}")
    axq.byquery("greeting")
    axq.remove(clone.name, force=True)
    with pytest.raises(Exception, match="no recipe produces tag `greeting`"):
        axq.plan("greeting")


@pytest.mark.parametrize(
    ("query", "error", "fragment"),
    [
        ("git_repo,collection,repo_name=axs2mlperf,checkout=stable", ParameterError, "say where to clone from"),
        ("git_repo,collection,url={tmp}/nothing", BuildError, "is not a git repository"),
        ("git_repo,collection,url={repo},checkout=nope", BuildError, "no checkout `nope`"),
    ],
)
def test_bad_collections_are_one_line_errors(work, repo, tmp_path, query, error, fragment):
    with pytest.raises(error, match=fragment):
        axq.byquery(query.format(tmp=tmp_path, repo=repo))
    assert axq.list_entries("git_repo") == []


def test_a_name_clash_with_a_built_in_recipe_names_both(work, repo):
    (repo / "entries" / "greeting").rename(repo / "entries" / "toy_number")
    git("add", "-A", ".", cwd=repo)
    git("commit", "-q", "-m", "clash", cwd=repo)
    axq.byquery(f"git_repo,collection,url={repo}")
    with pytest.raises(ManifestError, match="two recipes are called `toy_number`"):
        axq.plan("number")
