"""Building: reuse, identity, atomicity under failure, SIGINT, SIGKILL, and concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

import axq
from axq.errors import BuildError, Interrupted, ParameterError
from tests.conftest import axq_subprocess, run_axq


def entry_dirs(work) -> list[str]:
    """List complete-looking entries (directories with a manifest)."""
    return sorted(p.name for p in work.iterdir() if (p / "manifest.json").exists()) if work.exists() else []


def test_build_then_reuse(work):
    first = axq.byquery("sum,value=4,offset=1")
    assert first.get("total") == 5
    assert len(entry_dirs(work)) == 2
    again = axq.byquery("sum,offset=1,value=4")
    assert again.name == first.name
    assert again.manifest["provenance"]["started"] == first.manifest["provenance"]["started"]


def test_under_specified_query_never_returns_other_parameters(work):
    built = axq.byquery("number,value=7")
    default = axq.byquery("number")
    assert default.name != built.name
    assert default.get("value") == 1 and built.get("value") == 7


def test_manifest_records_provenance(work):
    entry = axq.byquery("sum,value=2")
    manifest = json.loads((entry.path / "manifest.json").read_text())
    prov = manifest["provenance"]
    assert prov["query"] == "sum,value=2"
    assert prov["command"].startswith("axq byquery sum,")
    assert {"python", "host", "started", "finished", "packages"} <= set(prov)
    assert manifest["deps"]["a"]["identity"] == entry.dep("a").identity
    assert (entry.path / "build.log").read_text().count("built") >= 1


def test_reproduce_command_gives_the_same_entry(work):
    entry = axq.byquery("sum,value=2")
    command = entry.manifest["provenance"]["command"].split(" ", 2)[2]
    assert axq.byquery(command).name == entry.name


@pytest.mark.parametrize("kind", ["user", "bug"])
def test_failed_build_leaves_no_entry_and_keeps_log(work, kind):
    error_type = BuildError if kind == "user" else RuntimeError
    with pytest.raises(error_type) as caught:
        axq.byquery(f"failing,kind={kind}")
    assert entry_dirs(work) == []
    assert os.listdir(work / ".tmp") == []
    (log,) = (work / ".logs").iterdir()
    assert "about to fail" in log.read_text()
    message = str(caught.value) + " ".join(getattr(caught.value, "__notes__", []))
    assert str(log) in message


def test_failed_build_does_not_block_the_next_attempt(work, tmp_path):
    with pytest.raises(BuildError):
        axq.byquery("failing")
    with pytest.raises(BuildError):  # fails again the same way: not "locked", not cached
        axq.byquery("failing")


def test_keyboard_interrupt_in_build_keeps_nothing(work, monkeypatch):
    def interrupted(ctx):
        raise KeyboardInterrupt

    from axq.recipe import all_recipes

    recipe = next(r for r in all_recipes() if r.name == "toy_number")
    monkeypatch.setattr(recipe.code(), "build", interrupted)
    with pytest.raises(Interrupted, match="nothing was kept"):
        axq.byquery("number,value=3")
    assert entry_dirs(work) == []


def _start_gated(gate, n=0) -> subprocess.Popen:
    proc = axq_subprocess("byquery", f"gated,gate_dir={gate},n={n}", ",", "get", "released")
    with open(gate / "started") as started:  # returns once the build is running
        assert started.read() == "started\n"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_signal_mid_build_leaves_nothing_complete_and_retry_works(work, gate, sig):
    proc = _start_gated(gate)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert entry_dirs(work) == []
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted while building" in err and "Traceback" not in err
    retry = axq_subprocess("byquery", f"gated,gate_dir={gate},n=0", ",", "get", "released")
    with open(gate / "started") as started:
        started.read()
    with open(gate / "release", "w") as release:
        release.write("go")
    out, err = retry.communicate(timeout=60)
    assert retry.returncode == 0, err
    assert out.strip() == "true"
    assert len(entry_dirs(work)) == 1


def test_two_processes_build_once(work, gate):
    first = _start_gated(gate, n=1)
    second = axq_subprocess("byquery", f"gated,gate_dir={gate},n=1", ",", "get_path")
    while "waiting for another process" not in (line := second.stderr.readline()):
        assert line, "second process ended without waiting for the lock"
    with open(gate / "release", "w") as release:
        release.write("go")
    released, _ = first.communicate(timeout=60)
    path, _ = second.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0
    assert released.strip() == "true" and (work / path.strip().rsplit("/", 1)[1]).is_dir()
    assert (gate / "builds.txt").read_text().count("\n") == 1
    assert len(entry_dirs(work)) == 1


def test_cache_is_shared_across_processes(work):
    assert run_axq("byquery", "sum,value=6", ",", "get", "total").stdout.strip() == "6"
    started = axq.byquery("sum,value=6").manifest["provenance"]["started"]
    assert run_axq("byquery", "sum,value=6", ",", "get", "total").stdout.strip() == "6"
    assert axq.byquery("sum,value=6").manifest["provenance"]["started"] == started


def test_entries_fetched_during_a_build_are_recorded_and_protected(work):
    from axq.errors import DependentsError

    collected = axq.byquery("collected,upto=3")
    assert collected.get("total") == 6
    numbers = {e.name for e in axq.list_entries("number")}
    assert set(collected.manifest["used"]) == numbers and len(numbers) == 3
    log = (collected.path / "build.log").read_text()
    assert "collected [1, 2, 3]" in log and log.rstrip().endswith(f"built {collected.name}")
    with pytest.raises(DependentsError, match=collected.name):
        axq.remove("number,value=2")


# -- the recipe contract: every input in the graph, stale entries rebuilt, getters read now ----


@pytest.fixture
def recipes(tmp_path, monkeypatch, work):
    """Copy the toy recipes somewhere a test may edit them; return that directory."""
    import shutil

    from tests.conftest import TOY_RECIPES

    copy = tmp_path / "recipes"
    shutil.copytree(TOY_RECIPES, copy)
    monkeypatch.setenv("AXQ_ENTRIES", str(copy))
    return copy


def bump(recipes, name: str, code_from: str = "", code_to: str = "") -> None:
    """Raise a toy recipe's version (and change its code), as a recipe author would."""
    from axq.entry import forget_loaded_code
    from axq.recipe import all_recipes

    manifest = recipes / name / "recipe.json"
    data = json.loads(manifest.read_text())
    data["version"] += 1
    manifest.write_text(json.dumps(data))
    if code_from:
        code = recipes / name / "code.py"
        code.write_text(code.read_text().replace(code_from, code_to))
    all_recipes.cache_clear()
    forget_loaded_code()


def test_entry_that_used_an_older_recipe_version_is_stale_and_rebuilt(recipes, axq_cli):
    assert axq.byquery("collected").get("total") == 3
    bump(recipes, "toy_number", 'write_text(str(ctx.params["value"]))', 'write_text(str(10 * ctx.params["value"]))')
    steps = axq.plan("collected")
    assert not steps[0].cached and steps[0].stale and "built by toy_number version 1, now 2" in steps[0].reason
    listed = axq.stale_reasons(axq.list_entries("collected"))
    assert list(listed.values()) == [steps[0].stale]
    assert axq.byquery("collected").get("total") == 30
    assert axq.plan("collected")[0].cached


def test_planned_dependencies_are_in_the_graph_identity_and_plan(recipes):
    steps = axq.plan("planned_sum,count=3")
    assert [s.node.producer.recipe.name for s in steps] == ["toy_planned", "toy_number", "toy_number", "toy_number"]
    assert steps[0].estimate_s == 1.5 and steps[0].reason == "not built yet"
    entry = axq.byquery("planned_sum,count=3")
    assert entry.get("total") == 6 and set(entry.manifest["deps"]) == {"n1", "n2", "n3"}
    bump(recipes, "toy_number")
    steps = axq.plan("planned_sum,count=3")
    assert not steps[0].cached and "dependency `n1` differs" in steps[0].reason
    assert axq.byquery("planned_sum,count=3").identity != entry.identity


def test_a_check_of_the_resolved_dependencies_refuses_before_anything_is_built(recipes, axq_cli):
    """check_deps sees each dependency's resolved parameters; its ParameterError names the rule."""
    assert axq.plan("planned_sum,count=2,top=2")[0].reason == "not built yet"
    with pytest.raises(ParameterError, match=r"`top=2` for toy_planned.*: is below the value of number 3"):
        axq.plan("planned_sum,count=3,top=2")
    code, out, err = axq_cli("byquery", "planned_sum,count=3,top=2", ",", "get", "total")
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert axq.list_entries("") == []


def test_a_getter_added_to_a_recipe_works_on_entries_built_before(recipes):
    entry = axq.byquery("number,value=4")
    manifest = recipes / "toy_number" / "recipe.json"
    data = json.loads(manifest.read_text())
    data["getters"].append("tripled")
    manifest.write_text(json.dumps(data))
    (recipes / "toy_number" / "getters.py").write_text("def tripled(entry):\n    return 3 * entry.params['value']\n")
    from axq.entry import forget_loaded_code

    forget_loaded_code()
    assert axq.byname(entry.name).get("tripled") == 12


def test_unknown_getter_lists_the_entry_getters(work, axq_cli):
    axq.byquery("number,value=2")
    code, _, err = axq_cli("byquery", "number,value=2", ",", "get", "dubled")
    assert code == 2 and "did you mean `doubled`?" in err and "its getters: doubled, stored" in err


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: "/proc/1/axq-wc", "cannot be created"),
        (lambda tmp: (tmp / "file").write_text("x") and str(tmp / "file"), "a file is in the way"),
        (lambda tmp: (tmp / "file2").write_text("x") and str(tmp / "file2" / "wc"), "a file is in the way"),
    ],
)
def test_unusable_work_collection_is_one_line(tmp_path, monkeypatch, make, fragment):
    from tests.conftest import TOY_RECIPES

    monkeypatch.setenv("AXQ_ENTRIES", str(TOY_RECIPES))
    path = make(tmp_path)
    result = run_axq("--work-collection", path, "byquery", "number,value=3", ",", "get", "stored")
    assert result.returncode == 1, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_disk_full_during_a_build_is_one_line_and_keeps_nothing(work):
    with pytest.raises(BuildError, match="no space left on the disk") as caught:
        axq.byquery("failing,kind=disk_full")
    assert caught.value.exit_code == 1 and entry_dirs(work) == []
    assert not os.listdir(work / ".tmp")
