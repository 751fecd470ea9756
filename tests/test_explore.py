"""axq explore: configurations scored by the recipe's hook, skipped and failed rows, the front, the best."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest

import axq
from axq import exploration as exploring
from axq.errors import ManifestError, UsageError
from axq.exploration import Plan, dominates, explore
from axq.progress import Reporter

QUIET = Reporter("quiet")
GRID = "explored,framework:=alpha:beta,precision:=fp32:bf16:fp16:int8,batch_size:=8:32"


def configs(rows: list[dict], key: str) -> set[tuple]:
    """Return the (framework, precision, batch_size) of the rows whose `key` is true."""
    return {(r["framework"], r["precision"], r["batch_size"]) for r in rows if r[key]}


@pytest.fixture
def grid_rows(work) -> list[dict]:
    """Explore the toy grid once."""
    return explore(GRID, reporter=QUIET)


def test_one_row_per_configuration_with_accuracy_ratio_and_performance(grid_rows):
    assert len(grid_rows) == 16
    row = next(r for r in grid_rows if (r["framework"], r["precision"], r["batch_size"]) == ("beta", "bf16", 32))
    assert row["accuracy"] == pytest.approx(97.2) and row["reference_accuracy"] == 98.0
    assert row["ratio"] == pytest.approx(97.2 / 98.0)
    assert row["performance"] == 32 * 150 * 1.8 and row["unit"] == "samples/s" and row["valid"] is True
    assert row["meets_target"] is True and row["error"] is None and row["skipped"] is None


def test_refused_configurations_are_skipped_rows_with_the_reason(grid_rows):
    skipped = [r for r in grid_rows if r["skipped"]]
    assert {r["precision"] for r in skipped} == {"fp16"} and len(skipped) == 4
    assert all("needs device=gpu" in r["skipped"] and r["accuracy"] is None for r in skipped)


def test_a_failing_configuration_is_a_row_with_its_error_and_log(grid_rows):
    failed = [r for r in grid_rows if r["error"]]
    assert configs(failed, "error") == {("beta", "int8", 8), ("beta", "int8", 32)}
    assert all("no int8 kernels" in r["error"] and r["log"].endswith(".log") for r in failed)
    assert not any(r["pareto"] for r in failed)


def test_front_and_target_follow_the_figures(grid_rows):
    assert configs(grid_rows, "pareto") == {("alpha", "fp32", 32), ("alpha", "bf16", 32), ("beta", "bf16", 32),
                                            ("alpha", "int8", 32)}
    below = [r for r in grid_rows if r["meets_target"] is False]
    assert {r["precision"] for r in below} == {"int8"}  # 95.5 / 98 < 0.99


def test_best_is_the_fastest_that_meets_the_target(grid_rows):
    (winner,) = exploring.best(grid_rows)
    assert (winner["framework"], winner["precision"], winner["batch_size"]) == ("beta", "bf16", 32)
    assert winner["command"] == ("axq byquery explored,framework=beta,precision=bf16,batch_size=32,mode=performance"
                                 " , get performance")


def test_lower_is_better_for_latencies(work):
    rows = explore("explored,scenario=latency,framework:=alpha:beta,precision:=fp32:bf16,batch_size:=1:8",
                   reporter=QUIET)
    assert all(r["unit"] == "ns" and r["higher_is_better"] is False for r in rows)
    assert configs(rows, "pareto") == {("alpha", "fp32", 1), ("alpha", "bf16", 1), ("beta", "bf16", 1)}
    (winner,) = exploring.best(rows)
    assert (winner["framework"], winner["precision"], winner["batch_size"]) == ("beta", "bf16", 1)


def test_a_stricter_target_names_another_best(work):
    rows = explore("explored,framework:=alpha:beta,precision:=fp32:bf16,batch_size=32", target=0.994, reporter=QUIET)
    assert [r["meets_target"] for r in rows] == [True, True, True, False]  # beta fp32: 0.9949, beta bf16: 0.9918
    (winner,) = exploring.best(rows)
    assert (winner["framework"], winner["precision"]) == ("alpha", "bf16")


def test_a_second_call_reuses_every_run(work):
    query = "explored,framework:=alpha:beta,precision:=fp32:bf16,batch_size:=8:32"
    first = explore(query, reporter=QUIET)
    names = [r[k] for r in first for k in ("accuracy_entry", "performance_entry", "reference_entry")]
    built = {name: axq.byname(name).get("built_ns") for name in names}
    second = explore(query, reporter=QUIET)
    assert [r[k] for r in second for k in ("accuracy_entry", "performance_entry", "reference_entry")] == names
    assert {name: axq.byname(name).get("built_ns") for name in names} == built
    assert [r["pareto"] for r in second] == [r["pareto"] for r in first]


def test_overrides_apply_to_every_run(work):
    rows = explore("explored,precision:=fp32:fp16", {"device": "gpu"}, reporter=QUIET)
    assert [r["skipped"] for r in rows] == [None, None]
    assert "device=gpu" in rows[1]["command"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("explored,precision:=fp16", "every configuration of .* is refused; the first: .*needs device=gpu"),
        ("number,value:=1:2", 'recipe `toy_number` does not say how to score a configuration: it has no `"explore"`'),
        ("explored,precision=fp32", "sweeps nothing"),
    ],
)
def test_grids_that_cannot_be_explored_are_usage_errors(work, query, message):
    with pytest.raises(UsageError, match=message):
        explore(query, reporter=QUIET)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((98, 100, True), (97, 90, True), True),
        ((98, 100, True), (98, 100, True), False),  # equal: neither dominates
        ((98, 90, True), (97, 100, True), False),  # more accurate, slower: both on the front
        ((98, 90, False), (97, 100, False), True),  # latencies: 90 beats 100
        ((97, 90, False), (98, 100, False), False),
    ],
)
def test_dominates(a, b, expected):
    def row(values):
        return dict(zip(("accuracy", "performance", "higher_is_better"), values, strict=True))

    assert dominates(row(a), row(b)) is expected


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        ({"accuracy": {"getter": "accuracy"}}, "must return a dict with `accuracy` and `performance`"),
        ({"accuracy": {"getter": "a"}, "performance": {"getter": "p"}, "target": 1.5}, "`target` must be a share"),
        ({"accuracy": {"overrides": {}}, "performance": {"getter": "p"}}, "`accuracy` must be a dict with a `getter`"),
        ({"accuracy": {"getter": "a", "higher": 1}, "performance": {"getter": "p"}}, "unknown key `higher`"),
    ],
)
def test_a_malformed_plan_is_the_recipes_error(plan, problem):
    with pytest.raises(ManifestError, match=problem):
        Plan.read("toy", plan)


def test_cli_prints_the_table_the_front_and_the_best(work, axq_cli):
    code, out, _ = axq_cli("--quiet", "explore", "explored,framework:=alpha:beta,precision:=fp32:bf16:fp16,"
                           "batch_size:=8:32")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:6] == ["framework", "precision", "batch_size", "accuracy", "ratio",
                                                   "performance"]
    assert "(samples/s)" in lines[0] and len(lines) == 1 + 12 + 2
    assert sum(" * " in line for line in lines[1:13]) == 3 and out.count("skipped: bad parameter") == 4
    assert "best configuration at >= 99% of the reference's accuracy: framework=beta,precision=bf16,batch_size=32" \
        in lines[-2]
    command = shlex.split(lines[-1])
    assert command[:2] == ["axq", "byquery"]
    code, value, _ = axq_cli("--quiet", *command[1:])
    assert code == 0 and float(value) == 32 * 150 * 1.8


def test_cli_exit_code_1_when_a_configuration_failed(work, axq_cli):
    code, out, _ = axq_cli("--quiet", "explore", "explored,framework=beta,precision:=fp32:int8")
    assert code == 1 and "failed: " in out and "framework=beta,precision=fp32" in out.splitlines()[-1]


def test_cli_writes_csv_json_and_png(work, tmp_path, axq_cli):
    csv_path, png_path = tmp_path / "out.csv", tmp_path / "out.png"
    code, out, _ = axq_cli("--quiet", "--json", "explore", "explored,framework:=alpha:beta,precision:=fp32:bf16",
                           "--csv", str(csv_path), f"--plot={png_path}", "--target=99.5%")
    rows = json.loads(out)
    assert code == 0 and [r["meets_target"] for r in rows] == [True, True, False, False]
    assert all(r["target"] == 0.995 for r in rows)
    with open(csv_path) as handle:
        table = list(csv.DictReader(handle))
    assert [t["pareto"] for t in table] == [str(r["pareto"]) for r in rows] and float(table[3]["ratio"]) < 0.995
    from PIL import Image

    with Image.open(png_path) as image:
        assert image.format == "PNG" and image.width >= 600


@pytest.mark.parametrize("target", ["2", "abc", "0"])
def test_cli_refuses_a_bad_target(work, axq_cli, target):
    code, _, err = axq_cli("explore", "explored,precision:=fp32:bf16", "--target", target)
    assert code == 2 and "expected a share of the reference's accuracy" in err


def test_plot_marks_the_front_and_labels_units(work):
    rows = explore("explored,scenario=latency,framework:=alpha:beta,precision:=fp32:bf16,batch_size:=1:8",
                   reporter=QUIET)
    from axq.plots import explore_figure

    fig = explore_figure(rows, "the query", exploring.describe(rows))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "performance (µs) (lower is better)" and ax.get_ylabel() == "accuracy (%)"
    assert ax.get_xscale() == "log"
    front = ax.get_lines()[0]  # the front, joined in order of performance
    assert list(front.get_ydata()) == [97.2, 97.7, 98.0]
    assert list(front.get_xdata()) == pytest.approx([1e6 / 150 / 1.8 / 1e3, 1e6 / 100 / 1.8 / 1e3, 10])  # µs
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert {"best at the target", "Pareto front", "meets the target"} <= set(labels)
    front_entry = legend.legend_handles[labels.index("Pareto front")]  # a visible dot on the front's line
    assert front_entry.get_marker() == "o" and front_entry.get_markersize() > 0 and front_entry.get_linewidth() > 0
    assert fig._suptitle.get_text() == "accuracy against performance" and ax.get_title() == "the query"


def test_mlperf_plan_scores_with_two_runs_against_fp32_pytorch():
    from axq_mlperf.explore import explore_plan

    offline, stream = (explore_plan({"loadgen_scenario": s}) for s in ("Offline", "SingleStream"))
    assert offline["accuracy"]["overrides"] == {"loadgen_mode": "AccuracyOnly"}
    assert offline["performance"]["overrides"] == {"loadgen_mode": "PerformanceOnly"}
    assert (offline["performance"]["higher_is_better"], offline["performance"]["unit"]) == (True, "samples/s")
    assert (stream["performance"]["higher_is_better"], stream["performance"]["unit"]) == (False, "ns")
    assert offline["reference"] == {"framework": "pytorch", "precision": "fp32"} and offline["target"] == 0.99
    Plan.read("loadgen_program", offline)  # the kernel accepts it


def test_a_real_digits_exploration_and_its_rerun(collection):
    query = "loadgen_output,classified_digits,precision:=fp32:bf16:fp16,batch_size=32"
    rows = explore(query, reporter=QUIET)
    assert [r["precision"] for r in rows if r["skipped"]] == ["fp16"] and "needs device=cuda" in rows[2]["skipped"]
    fp32, bf16 = rows[:2]
    assert fp32["ratio"] == 1.0 and fp32["reference_entry"] == fp32["accuracy_entry"]
    assert bf16["reference_entry"] == fp32["accuracy_entry"] and 0.9 < bf16["ratio"] <= 1.02
    assert all(r["valid"] and r["unit"] == "samples/s" and r["performance"] > 100 for r in (fp32, bf16))
    assert any(r["pareto"] for r in (fp32, bf16)) and exploring.best(rows)[0]["meets_target"]
    built = {r[k]: axq.byname(r[k]).manifest["provenance"]["started"] for r in (fp32, bf16)
             for k in ("accuracy_entry", "performance_entry")}
    again = explore(query, reporter=QUIET)
    assert {r[k]: axq.byname(r[k]).manifest["provenance"]["started"] for r in again[:2]
            for k in ("accuracy_entry", "performance_entry")} == built
    assert [r["performance"] for r in again[:2]] == [fp32["performance"], bf16["performance"]]


def _let_builds_through(gate: Path, count: int) -> None:
    """Wait for `count` gated builds in turn, releasing each."""
    for _ in range(count):
        with open(gate / "started") as started:
            started.read()
        with open(gate / "release", "w") as release:
            release.write("go")


def test_ctrl_c_keeps_finished_configurations_and_a_rerun_resumes(work, gate):
    import signal

    from tests.conftest import axq_subprocess

    query = f"explored,gate_dir={gate},batch_size:=1:2"
    proc = axq_subprocess("explore", query)
    _let_builds_through(gate, 2)  # configuration 1: accuracy (its own reference) and performance
    with open(gate / "started") as started:  # configuration 2's accuracy run is building
        started.read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "explore interrupted at configuration 2/2 (batch_size=2) after 1 finished configuration" in err
    assert "run it again to resume" in err
    assert len([line for line in err.splitlines() if line.startswith("axq:")]) == 1  # which point, what is kept
    assert out.splitlines()[1].split()[:3] == ["1", "98", "1.0000"] and len(out.splitlines()) == 1 + 1 + 2
    rerun = axq_subprocess("explore", query)
    _let_builds_through(gate, 2)
    out, _ = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and len(out.splitlines()) == 1 + 2 + 2
    assert (gate / "builds.txt").read_text().count("\n") == 5  # configuration 1 twice, 2 once, then twice
