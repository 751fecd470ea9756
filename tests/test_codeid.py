"""Identity follows the code: a recipe's folder and the library modules it imports, by content.

The recipes edited here are copies (of the toy recipes, or of the shipped entries/ in a
temporary root), never the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import axq
from axq import cli, codeid, locations
from axq.recipe import all_recipes
from tests.conftest import REPO, TOY_RECIPES

TOYLIB = {
    "__init__.py": '"""A toy recipe library."""\n',
    "shared.py": '"""What toy_sum uses."""\n\nfrom . import deep\n\n\ndef offset():\n    return deep.ZERO\n',
    "deep.py": '"""Imported by shared, so by toy_sum too (transitively)."""\n\nZERO = 0\n',
    "unrelated.py": '"""Imported by no recipe."""\n\nimport json  # noqa: F401\n\nVALUE = 1\n',
}
SUM_IMPORT = "from toylib import shared  # noqa: F401  (its code is toy_sum's)\n"


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: Path) -> Path:
    """Copy the toy recipes with a library (`lib/toylib`, imported by toy_sum) where a test may edit them."""
    copy = tmp_path / "recipes"
    shutil.copytree(TOY_RECIPES, copy)
    for name, text in TOYLIB.items():
        path = copy / "lib" / "toylib" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    code = copy / "toy_sum" / "code.py"
    code.write_text(code.read_text().replace('"""\n', '"""\n\n' + SUM_IMPORT, 1))
    monkeypatch.setenv("AXQ_ENTRIES", str(copy))
    return copy


def edit(path: Path, old: str, new: str) -> None:
    """Change a file as a recipe author would (then forget the recipes a process loaded)."""
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new))
    all_recipes.cache_clear()  # a process reads recipe.json once; code.py again when it changed


def identities(query: str) -> dict[str, str]:
    """Map each recipe of a query's plan to its node's identity."""
    return {step.node.producer.recipe.name: step.node.identity for step in axq.plan(query)}


def test_a_recipes_code_is_its_folder_and_the_library_modules_it_imports_transitively(recipes: Path):
    (recipes / "toy_sum" / "__pycache__").mkdir()
    (recipes / "toy_sum" / "__pycache__" / "code.cpython.pyc").write_bytes(b"\0")
    (recipes / "toy_sum" / ".code.py.swp").write_text("an editor's")
    code = codeid.recipe_code(recipes / "toy_sum")
    assert sorted(code.files) == ["lib/toylib/__init__.py", "lib/toylib/deep.py", "lib/toylib/shared.py",
                                  "toy_sum/code.py", "toy_sum/recipe.json"]
    assert code.shown("lib/toylib/deep.py") == str(recipes / "lib" / "toylib" / "deep.py")
    assert sorted(codeid.recipe_code(recipes / "toy_number").files) == ["toy_number/code.py", "toy_number/recipe.json"]


def test_a_shipped_recipe_imports_its_library_modules_and_no_others():
    code = codeid.recipe_code(locations.builtin_entries() + "/loadgen_program")
    assert {"loadgen_program/harness.py", "loadgen_program/getters.py", "lib/axq_mlperf/backends.py",
            "lib/axq_mlperf/system.py"} <= set(code.files)  # system: named by recipe.json's default_from
    assert not any("torch" in key or key.startswith("axq/") for key in code.files)
    assert code.shown("loadgen_program/harness.py") == os.path.join(
        os.path.relpath(locations.builtin_entries(), REPO), "loadgen_program", "harness.py")
    assert "lib/axq_mlperf/submission.py" not in code.files


@pytest.mark.parametrize("path", ["toy_sum/code.py", "lib/toylib/shared.py", "lib/toylib/deep.py"])
def test_editing_any_file_a_recipe_imports_changes_its_identity_and_nothing_else(recipes: Path, path: str):
    before = identities("sum,value=3")
    edit(recipes / path, '"""\n', '"""\n\nEDITED = True\n')
    after = identities("sum,value=3")
    assert after["toy_sum"] != before["toy_sum"]
    assert after["toy_number"] == before["toy_number"]


def test_a_comment_in_an_unrelated_library_module_keeps_every_identity(recipes: Path):
    before = {q: identities(q) for q in ("sum,value=3", "number,value=5", "collected")}
    edit(recipes / "lib" / "toylib" / "unrelated.py", "VALUE = 1\n", "VALUE = 1  # a comment\n")
    assert {q: identities(q) for q in before} == before


def test_a_new_import_of_a_library_module_brings_its_code_in(recipes: Path):
    before = identities("number,value=5")
    edit(recipes / "toy_number" / "code.py", '"""\n', '"""\n\nimport toylib.unrelated  # noqa: F401\n')
    edited = identities("number,value=5")
    assert edited != before
    edit(recipes / "lib" / "toylib" / "unrelated.py", "VALUE = 1", "VALUE = 2")
    assert identities("number,value=5") != edited
    assert "lib/toylib/unrelated.py" in codeid.recipe_code(recipes / "toy_number").files


def test_plan_names_the_changed_file_and_list_keeps_the_old_entry_superseded(recipes: Path, axq_cli):
    old = axq.byquery("sum,value=3")
    edit(recipes / "toy_sum" / "code.py", "ctx.params[\"offset\"]", "ctx.params[\"offset\"] + 100")
    steps = axq.plan("sum,value=3")
    shown = str(recipes / "toy_sum" / "code.py")
    assert [(s.node.producer.recipe.name, s.cached) for s in steps] == [("toy_sum", False), ("toy_number", True)]
    assert steps[0].reason == f"stale: toy_sum ({shown} changed)"
    assert f"stale: toy_sum ({shown} changed)" in axq_cli("plan", "sum,value=3")[1]
    new = axq.byquery("sum,value=3")
    assert new.name != old.name and new.get("total") == 103 and new.dep("a").name == old.dep("a").name
    listed = {row["name"]: row for row in json.loads(axq_cli("--json", "list", "sum")[1])}
    assert listed[old.name]["superseded"] == f"toy_sum ({shown} changed)"
    assert listed[new.name]["superseded"] is None
    header = axq_cli("list", "sum")[1].splitlines()[0]
    assert header.split()[-1] == "superseded"
    axq.gc()
    assert axq.byname(old.name).get("total") == 3  # a true record of the old code: gc keeps it


def test_a_library_edit_is_named_in_the_plan_of_every_recipe_importing_it(recipes: Path):
    edit(recipes / "toy_collector" / "code.py", '"""\n', '"""\n\n' + SUM_IMPORT)
    axq.byquery("sum,value=3")
    axq.byquery("collected")
    edit(recipes / "lib" / "toylib" / "deep.py", "ZERO = 0", "ZERO = 0 * 1")
    shown = f"{recipes / 'lib' / 'toylib' / 'deep.py'} changed"
    assert [(s.reason, s.cached) for s in axq.plan("sum,value=3")] == [
        (f"stale: toy_sum ({shown})", False), ("cached", True)]
    assert axq.plan("collected")[0].reason == f"stale: toy_collector ({shown})"


def test_an_entry_that_used_an_entry_of_older_code_is_stale_and_says_which_file(recipes: Path):
    collected = axq.byquery("collected")
    edit(recipes / "toy_number" / "code.py", "write_text(str(", "write_text(str(0 + ")
    (step,) = axq.plan("collected")
    assert step.node.identity == collected.identity  # what it used is not in its identity: it is rebuilt
    assert step.reason.startswith("stale: used entry toy_number_number_1-")
    assert step.reason.endswith(f"is stale (toy_number ({recipes / 'toy_number' / 'code.py'} changed))")


def test_a_dependencys_code_change_is_named_in_its_dependents_plan(recipes: Path):
    axq.byquery("sum,value=3")
    edit(recipes / "toy_number" / "code.py", "write_text(str(", "write_text(str(0 + ")
    steps = axq.plan("sum,value=3")
    shown = f"{recipes / 'toy_number' / 'code.py'} changed"
    assert [s.reason for s in steps] == [f"stale: toy_sum ({shown})", f"stale: toy_number ({shown})"]
    assert axq.byquery("sum,value=3").get("total") == 3


def test_an_entry_built_before_code_digests_is_stale_superseded_and_kept(work: Path, axq_cli):
    from axq.identity import manifest_identity

    built = axq.byquery("number,value=4")
    manifest = json.loads((built.path / "manifest.json").read_text())
    del manifest["code"]
    manifest["identity"] = manifest_identity(manifest)  # the identity of the old formula
    manifest["name"] = built.name.rsplit("-", 1)[0] + "-" + manifest["identity"][:16]
    (built.path / "manifest.json").write_text(json.dumps(manifest))
    built.path.rename(work / manifest["name"])
    axq.reindex()
    (step,) = axq.plan("number,value=4")
    assert step.reason == "stale: toy_number (built before axq recorded the code a build ran)"
    assert axq.superseded_reasons(axq.list_entries("number")) == {
        manifest["name"]: "toy_number (built before axq recorded the code a build ran)"}
    again = axq.byquery("number,value=4")
    assert again.name == built.name and axq.byname(manifest["name"]).get("stored") == 4


def test_the_memo_does_not_answer_an_edited_recipe(recipes: Path, axq_cli, capsys):
    words = ["byquery", "number,value=2", ",", "get", "stored"]
    assert axq_cli(*words)[1].strip() == "2"
    assert cli._cached_get(words) == 0  # answered from the memo
    assert capsys.readouterr().out.strip() == "2"
    edit(recipes / "toy_number" / "code.py", 'write_text(str(ctx.params["value"]))',
         'write_text(str(10 * ctx.params["value"]))')
    assert cli._cached_get(words) is None
    assert axq_cli(*words)[1].strip() == "20"


@pytest.mark.parametrize("path", ["toy_number/code.py", "lib/toylib/unrelated.py"])
def test_the_memo_key_follows_every_code_file_by_stat(recipes: Path, path: str):
    before = locations.recipe_fingerprint()
    target = recipes / path
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert locations.recipe_fingerprint() != before


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: Path) -> Path:
    """Copy the shipped recipes (entries/) to a temporary root that stands in for them."""
    copy = tmp_path / "entries"
    shutil.copytree(locations.builtin_entries(), copy, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    monkeypatch.setattr(locations, "builtin_entries", lambda: str(copy))
    monkeypatch.delenv("AXQ_ENTRIES")
    return copy


DIGITS = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly,loadgen_scenario=Offline"


def test_editing_the_harness_changes_only_the_loadgen_runs_identity(shipped: Path):
    before = [(s.node.producer.recipe.name, s.node.identity) for s in axq.plan(DIGITS)]
    submission = ("mlperf_submission,submitter=me,system=box,division=open,loadgen_execution=test,"
                  "scenarios=SingleStream,benchmark_query='classified_digits,num_threads=1'")
    before_submission = identities(submission)
    edit(shipped / "loadgen_program" / "harness.py", "\nimport contextlib\n", "\nimport contextlib  # edited\n")
    after = [(s.node.producer.recipe.name, s.node.identity) for s in axq.plan(DIGITS)]
    changed = [name for (name, old), (_, new) in zip(before, after, strict=True) if old != new]
    assert changed == ["loadgen_program"] and len(before) == 5
    after_submission = identities(submission)
    assert after_submission["mlperf_submission"] != before_submission["mlperf_submission"]
    assert after_submission["model_small_cnn"] == before_submission["model_small_cnn"]
