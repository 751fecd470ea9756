"""Building: reuse, identity, atomicity under failure, SIGINT, SIGKILL, and concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

import axq
from axq.errors import BuildError, Interrupted
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
