"""The Python API: list, plan, rm with dependents, gc and wipe; what `import axq` finds, and how results read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import axq
from axq.errors import DependentsError, EntryNotFound
from tests.conftest import REPO


def test_list_matches_loosely(work):
    axq.byquery("sum,value=2")
    axq.byquery("number,value=5")
    assert {e.params["value"] for e in axq.list_entries("number")} == {2, 5}
    assert [e.params["value"] for e in axq.list_entries("number,value>3")] == [5]
    assert [e.params["value"] for e in axq.list_entries("number,squared=25")] == [5]
    assert len(axq.list_entries("")) == 3


def test_plan_says_what_is_cached_and_why_the_rest_is_built(work):
    axq.byquery("sum,value=2")
    steps = axq.plan("sum,value=2,offset=3")
    assert [(s.node.producer.recipe.name, s.cached) for s in steps] == [("toy_sum", False), ("toy_number", True)]
    assert "offset: 0 -> 3" in steps[0].reason
    fresh = axq.plan("number,value=9")
    assert "value: 2 -> 9" in fresh[0].reason


def test_rm_refuses_to_break_dependents_unless_forced(work):
    total = axq.byquery("sum,value=2")
    number = total.dep("a")
    with pytest.raises(DependentsError, match=total.name):
        axq.remove(number.name)
    assert number.path.exists()
    removed = axq.remove(number.name, force=True)
    assert set(removed) == {number.name, total.name}
    assert not number.path.exists() and not total.path.exists()


def test_rm_by_query_and_unknown_target(work):
    axq.byquery("number,value=2")
    axq.byquery("number,value=3")
    assert len(axq.remove("number,value=3")) == 1
    with pytest.raises(EntryNotFound):
        axq.remove("number,value=3")
    assert [e.params["value"] for e in axq.list_entries("number")] == [2]


def test_gc_removes_leftovers_of_killed_builds(work):
    axq.byquery("number")
    leftover = work / ".tmp" / "toy_number_number-0000000000000000.abc123"
    leftover.mkdir(parents=True)
    assert axq.gc()["leftovers_removed"] == 1
    assert not leftover.exists()
    assert len(axq.list_entries()) == 1


def test_wipe_removes_everything(work):
    axq.byquery("sum")
    assert axq.wipe() == 2
    assert axq.list_entries() == []
    assert axq.where() == os.fspath(work)


def test_plan_lists_an_entry_needed_twice_once(work):
    steps = axq.plan("planned_sum,count=2,repeat=true")
    assert [s.node.params.get("value") for s in steps] == [None, 1, 2]
    assert sum(s.estimate_s or 0 for s in steps) == 1.5


def test_dir_lists_the_api_and_every_name_in_it_is_there():
    assert set(axq.__all__) <= set(dir(axq))
    assert all(callable(getattr(axq, name)) for name in axq.__all__)
    with pytest.raises(AttributeError, match="no attribute 'plann'"):
        axq.plann  # noqa: B018


def test_a_plan_reads_as_axq_plan_prints_it(work, axq_cli):
    axq.byquery("sum,value=2")
    steps = axq.plan("sum,value=2,offset=3")
    code, out, _ = axq_cli("plan", "sum,value=2,offset=3")
    assert code == 0 and repr(steps) == str(steps) == out.rstrip("\n")
    build, cached = steps
    assert repr(build) == f"Step(build {build.node.name}: {build.reason})"
    assert repr(cached) == f"Step(cached {cached.node.name})"
    assert repr(build.node) == f"Node({build.node.name!r})"
    entry = axq.byquery("sum,value=2")
    assert repr(axq.list_entries("sum")) == f"[Entry({entry.name!r})]"


def test_import_axq_from_the_folder_above_a_clone_called_axq(tmp_path):
    """The venv that `make` sets up finds the checkout's package there, not the clone as a namespace package.

    setuptools' editable finder is asked only after sys.path, whose first entry is the
    current folder: the Makefile's line that puts the checkout on sys.path (run here in a
    fresh venv) is what makes `import axq` right in the folder above the clone.
    """
    clone = tmp_path / "above" / "axq"
    clone.parent.mkdir()
    clone.symlink_to(REPO, target_is_directory=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    dry_run = subprocess.run(["make", "-n", "-B", f"VENV={venv}", f"{venv}/bin/axq"], cwd=REPO, env=env, text=True,
                             capture_output=True, check=True, timeout=60).stdout.splitlines()
    path_entry = [line for line in dry_run if "axq_checkout.pth" in line]
    assert len(path_entry) == 1, dry_run
    subprocess.run(["sh", "-c", path_entry[0]], cwd=clone, env=env, check=True, timeout=60)
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import axq; print(axq.__file__, 'plan' in dir(axq))"],
                           cwd=clone.parent, env=env, text=True, capture_output=True, timeout=60, check=False)
    assert found.returncode == 0, found.stderr
    path, listed = found.stdout.split()
    assert os.path.realpath(path) == str((REPO / "axq" / "__init__.py").resolve()) and listed == "True"


def test_plan_estimates_from_the_durations_recorded_here(work):
    built = [axq.byquery(f"number,value=3,label={label}") for label in ("a", "b", "c")]
    recorded = sorted(e.manifest["provenance"]["duration_s"] for e in built)
    (like,) = axq.plan("number,value=3,label=d")  # same key parameter (value), another label
    assert (like.estimate_s, like.estimate_basis) == (recorded[1], "3 builds here")
    (other,) = axq.plan("number,value=4")  # no like build, and the recipe has no estimate hook
    assert (other.estimate_s, other.estimate_basis) == (None, None)
    steps = axq.plan("planned_sum,count=2,repeat=true")  # no like builds: the recipe's estimate
    assert {s.estimate_basis for s in steps if s.estimate_s is not None} == {"the recipe"}
