"""The measuring system's fingerprint: readable, cheap, and part of every machine-bound entry's identity."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import axq
from axq.errors import BuildError
from axq.recipe import all_recipes, forget_computed_defaults
from axq.resolve import resolve
from axq_mlperf import system

SHAPE = re.compile(r"^[a-z0-9-]+-\d+c-\d+g-(cpu|\d+x[a-z0-9-]+)-[a-z]+-[0-9a-f]{8}$")
POINT = "system_point,value=2"


def test_the_fingerprint_is_short_readable_and_stable() -> None:
    here = system.fingerprint()
    parts = system.description()
    assert SHAPE.match(here), here
    assert here == system.fingerprint(parts) == system.fingerprint()
    assert f"-{parts['cpu_cores']}c-{parts['memory_gib']}g-" in here and len(here) <= 80
    assert parts["cpu_cores"] >= 1 and parts["memory_gib"] >= 1 and parts["os"].startswith("linux")


def test_the_frameworks_that_change_the_numbers_are_in_it() -> None:
    from importlib import metadata

    versions = system.framework_versions()
    assert versions["torch"] == metadata.version("torch")
    assert versions["mlcommons-loadgen"] == metadata.version("mlcommons-loadgen")


@pytest.mark.parametrize("part", ["cpu_model", "cpu_cores", "gpu_model", "gpu_count", "memory_gib", "os",
                                  "machine", "python", "frameworks"])
def test_every_part_changes_the_fingerprint(part: str) -> None:
    parts = system.description()
    other = {**parts, part: {"torch": "0.0"} if part == "frameworks" else 7 if isinstance(parts[part], int)
             else "something else"}
    assert system.fingerprint(other) != system.fingerprint(parts)


@pytest.mark.parametrize(("model", "expected"), [
    ("AMD EPYC 9B45 64-Core Processor", "amd-epyc-9b45"),
    ("Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", "intel-xeon-platinum-8480"),
    ("Intel(R) Core(TM) i9-13900K", "intel-i9-13900k"),
    ("NVIDIA H200", "h200"),
    ("NVIDIA GeForce RTX 4090", "rtx-4090"),
    ("", "unknown"),
])
def test_model_names_are_shortened(model: str, expected: str) -> None:
    assert system.slug(model) == expected


def test_gpus_come_from_the_driver_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (tmp_path / bus).mkdir()
        (tmp_path / bus / "information").write_text("Model: \t\t NVIDIA H200\nIRQ:   42\n")
    monkeypatch.setattr(system, "NVIDIA_GPUS", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert system.gpus() == ("NVIDIA H200", 2)
    assert "-2xh200-" in system.fingerprint()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert system.gpus() == ("NVIDIA H200", 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert system.gpus() == ("", 0)


def test_it_is_cheap_and_imports_nothing_heavy() -> None:
    code = ("import sys, time; t = time.perf_counter(); from axq_mlperf import system; system.fingerprint(); "
            "print(time.perf_counter() - t); print(sorted({'torch', 'numpy', 'mlperf_loadgen'} & set(sys.modules)))")
    lib = str(Path(system.__file__).parent.parent)
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": lib}, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[1] == "[]"
    assert float(out[0]) < 0.5


def test_measuring_for_another_machine_is_refused() -> None:
    system.require_here(system.fingerprint())
    with pytest.raises(BuildError, match="another machine"):
        system.require_here("other-machine-1c-1g-cpu-linux-00000000")


def machine(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Simulate running on machine `name`: its fingerprint (the toy recipe's) and its host name."""
    monkeypatch.setenv("AXQ_TEST_SYSTEM", name)
    real = os.uname()
    fake = os.uname_result((real.sysname, name, real.release, real.version, real.machine))
    monkeypatch.setattr(os, "uname", lambda: fake)
    forget_computed_defaults()


def test_two_simulated_machines_never_share_an_entry(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, "machine-a")
    a = axq.byquery(POINT)
    machine(monkeypatch, "machine-b")
    steps = axq.plan(POINT)
    assert not steps[0].cached and steps[1].cached  # the portable number entry is shared, the figure is not
    b = axq.byquery(POINT)
    assert a.name != b.name and a.identity != b.identity
    assert (a.get("measured_on"), b.get("measured_on")) == ("machine-a", "machine-b")
    assert a.dep("base").name == b.dep("base").name
    assert axq.byquery(f"{POINT},system=machine-a").name == a.name  # reading another machine's result


def test_the_query_memo_never_answers_for_another_machine(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, "machine-a")
    axq.byquery(POINT)
    machine(monkeypatch, "machine-b")
    assert axq.byquery(POINT).get("measured_on") == "machine-b"


def test_a_build_for_another_machine_is_refused_and_nothing_kept(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, "machine-a")
    with pytest.raises(BuildError, match="another machine"):
        axq.byquery(f"{POINT},system=machine-z")
    assert not list(work.glob("toy_system_*"))


def loadgen_declares_system() -> bool:
    all_recipes.cache_clear()
    recipe = next((r for r in all_recipes(()) if r.name == "loadgen_program"), None)
    return recipe is not None and "system" in recipe.parameters


LOADGEN = "loadgen_output,classified_digits,loadgen_mode=PerformanceOnly"


@pytest.mark.skipif(not loadgen_declares_system(), reason="loadgen_program has no `system` parameter yet")
def test_two_machines_never_share_a_loadgen_run(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = resolve(LOADGEN)
    monkeypatch.setattr(system, "cpu_model", lambda: "Simulated CPU 9000")
    forget_computed_defaults()
    there = resolve(LOADGEN)
    assert there.params["system"].startswith("simulated-9000-") and here.params["system"] != there.params["system"]
    assert here.identity != there.identity
    assert {k: d.identity for k, d in here.deps.items()} == {k: d.identity for k, d in there.deps.items()}
    assert resolve(f"{LOADGEN},system={here.params['system']}").identity == here.identity
