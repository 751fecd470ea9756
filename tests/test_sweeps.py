"""Sweeps: expansion into points, cached points reused, failures as rows, CSV/JSON/PNG."""

from __future__ import annotations

import csv
import json

import pytest

import axq
from axq.errors import UsageError
from axq.progress import Reporter

QUIET = Reporter("quiet")


@pytest.mark.parametrize(
    ("query", "points"),
    [
        ("number,value:=1:2:3", [{"value": 1}, {"value": 2}, {"value": 3}]),
        ("number,value:=1..8*2", [{"value": v} for v in (1, 2, 4, 8)]),
        ("number,value:=10..30+10", [{"value": v} for v in (10, 20, 30)]),
        ("sum,value:=1:2,offset:=0..1", [{"value": 1, "offset": 0}, {"value": 1, "offset": 1},
                                         {"value": 2, "offset": 0}, {"value": 2, "offset": 1}]),
    ],
)
def test_sweep_rows_follow_the_expansion(work, query, points):
    getter = "doubled" if query.startswith("number") else "total"
    rows = axq.sweep(query, getter, reporter=QUIET)
    assert [{k: r[k] for k in p} for r, p in zip(rows, points, strict=True)] == points
    for row in rows:
        expected = 2 * row["value"] if getter == "doubled" else row["value"] + row["offset"]
        assert row[getter] == expected and row["valid"] is True and row["error"] is None


def test_cached_points_are_not_rebuilt(work):
    cached = axq.byquery("number,value=2")
    started = cached.manifest["provenance"]["started"]
    rows = axq.sweep("number,value:=1:2:3", ["doubled"], reporter=QUIET)
    assert rows[1]["entry"] == cached.name
    assert axq.byname(cached.name).manifest["provenance"]["started"] == started


def test_a_failing_point_is_a_row_and_the_others_run(work):
    rows = axq.sweep("failing,kind:=user:bug", ["kind"], reporter=QUIET)
    assert [r["valid"] for r in rows] == [None, None]
    assert "the input data is missing" in rows[0]["error"]
    assert rows[1]["error"] == "a bug in the recipe"
    assert all(r["log"].endswith(".log") for r in rows)


def test_unknown_getter_stops_the_sweep(work):
    with pytest.raises(UsageError, match="did you mean `doubled`"):
        axq.sweep("number,value:=1:2", ["dubled"], reporter=QUIET)


def test_a_query_without_sweep_is_refused(work):
    with pytest.raises(UsageError, match="sweeps nothing"):
        axq.sweep("number,value=1", ["doubled"], reporter=QUIET)


def test_cli_writes_csv_json_and_png(work, tmp_path, axq_cli):
    csv_path, png_path = tmp_path / "out.csv", tmp_path / "out.png"
    code, out, _ = axq_cli("--quiet", "--json", "sweep", "number,value:=1..16*2", ",", "get", "doubled,squared",
                           f"--csv={csv_path}", f"--plot={png_path}")
    assert code == 0
    assert [r["squared"] for r in json.loads(out)] == [1, 4, 16, 64, 256]
    with open(csv_path) as handle:
        table = list(csv.DictReader(handle))
    assert [int(r["doubled"]) for r in table] == [2, 4, 8, 16, 32]
    from PIL import Image

    with Image.open(png_path) as image:
        assert image.format == "PNG" and image.width >= 500 and image.height >= 400


def test_cli_sweep_exit_code_is_1_when_a_point_failed(work, axq_cli):
    code, out, _ = axq_cli("--quiet", "sweep", "failing,kind:=user:bug", ",", "get", "kind")
    assert code == 1 and out.count("\n") == 3


def test_progress_lines_when_not_a_terminal(work, capsys):
    import io

    stream = io.StringIO()
    axq.sweep("number,value:=1:2", ["doubled"], reporter=Reporter(stream=stream))
    lines = stream.getvalue().splitlines()
    assert any("sweep point 2/2: value=2" in line for line in lines)
    assert all(line.startswith("[") and line[9] == "]" for line in lines)


def test_ctrl_c_keeps_finished_points_and_a_rerun_resumes(work, gate):
    import signal

    from tests.conftest import axq_subprocess

    query = f"gated,gate_dir={gate},n:=1:2"
    proc = axq_subprocess("sweep", query, ",", "get", "released")
    for _ in range(2):  # let point 1 finish, then catch point 2 mid-build
        with open(gate / "started") as started:
            started.read()
        if _ == 0:
            with open(gate / "release", "w") as release:
                release.write("go")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run it again to resume" in err
    assert "sweep interrupted at point 2/2 (n=2) after 1 finished point: their entries are kept" in err
    assert len([line for line in err.splitlines() if line.startswith("axq:")]) == 1  # which point, what is kept
    assert out.splitlines()[1].split()[:2] == ["1", "True"]
    rerun = axq_subprocess("sweep", query, ",", "get", "released")
    with open(gate / "started") as started:
        started.read()
    with open(gate / "release", "w") as release:
        release.write("go")
    out, _ = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and len(out.splitlines()) == 3
    assert (gate / "builds.txt").read_text().count("\n") == 3  # point 1 once, point 2 twice


def test_rows_carry_the_bounds_their_recipe_declares(work):
    rows = axq.sweep("explored,mode=performance,batch_size:=1:2", ["latency_ns"], reporter=QUIET)
    assert [r["latency_bound_ms"] for r in rows] == [100.0, 100.0]
    rows = axq.sweep("explored,mode=performance,batch_size:=1:2", ["performance"], reporter=QUIET)
    assert "latency_bound_ms" not in rows[0]  # only the bounds of the getters asked for


def test_notes_read_units_fixed_or_from_a_getter(work):
    from axq.sweeps import notes_of

    throughput, latency = (axq.byquery(f"explored,mode=performance,scenario={s}") for s in ("throughput", "latency"))
    assert notes_of(throughput).units == {"accuracy": "%", "performance": "samples/s", "latency_ns": "ns",
                                          "latency_bound_ms": "ms"}
    assert notes_of(latency).units["performance"] == "ns"
    assert notes_of(latency).bounds == {"latency_ns": "latency_bound_ms"}


@pytest.mark.parametrize(
    ("query", "labels", "xscale"),
    [
        ("explored,mode=performance,batch_size:=1000..16000*2", ["1000", "2000", "4000", "8000", "16000"], "log"),
        ("explored,mode=performance,batch_size:=1..16*2", ["1", "2", "4", "8", "16"], "log"),
        ("explored,mode=performance,batch_size:=100..300+100", ["100", "200", "300"], "linear"),
        ("explored,mode=performance,precision:=fp32:bf16:int8", ["fp32", "bf16", "int8"], "linear"),
    ],
)
def test_plot_ticks_are_the_swept_values(work, query, labels, xscale):
    from axq.plots import sweep_figure as figure
    from axq.query import parse
    from axq.sweeps import rows_notes, swept_keys

    rows = axq.sweep(query, ["performance", "latency_ns"], reporter=QUIET)
    fig = figure(rows, swept_keys(parse(query))[0], ["performance", "latency_ns"], query, rows_notes(rows))
    bottom = fig.axes[-1]
    assert [t.get_text() for t in bottom.get_xticklabels()] == labels
    assert [t.get_text() for t in bottom.get_xticklabels(minor=True)] == []
    assert bottom.get_xscale() == xscale


def test_plot_shows_units_times_in_ms_on_a_log_scale_and_the_bound(work):
    from axq.plots import sweep_figure as figure
    from axq.sweeps import rows_notes

    query = "explored,mode=performance,batch_size:=1000..16000*2"
    rows = axq.sweep(query, ["performance", "latency_ns"], reporter=QUIET)
    fig = figure(rows, "batch_size", ["performance", "latency_ns"], query, rows_notes(rows))
    throughput, latency = fig.axes
    assert throughput.get_ylabel() == "performance (samples/s)" and throughput.get_yscale() == "linear"
    assert latency.get_ylabel() == "latency (ms)" and latency.get_yscale() == "log"
    assert list(latency.get_lines()[0].get_ydata()) == pytest.approx([10, 20, 40, 80, 160])  # 1e7 ns = 10 ms
    bound = [line for line in latency.get_lines() if line.get_label().startswith("latency_bound_ms")]
    assert len(bound) == 1 and list(bound[0].get_ydata()) == [100.0, 100.0]
    assert len(fig.axes) == 2  # the bound is a line, not a panel of its own
    assert fig._suptitle.get_text() == "performance, latency_ns against batch_size"
    assert throughput.get_title() == query
    fig.canvas.draw()
    shown = [t.get_text() for t in latency.get_yticklabels() if t.get_text()]
    assert "10" in shown and "100" in shown and not any("e" in t or "$" in t for t in shown)  # plain, no 10^k


@pytest.mark.parametrize("where", ["build", "between points"])
def test_ctrl_c_in_a_sweep_is_one_line_that_says_so_and_exit_130(work, axq_cli, monkeypatch, where):
    """Ctrl-C in a point's build, or between two points, prints one non-empty line, exit 130 (issue 22)."""
    from axq.progress import Reporter
    from axq.recipe import all_recipes

    code = next(r for r in all_recipes() if r.name == "toy_number").code()
    built, log = code.build, Reporter.log

    def interrupted(ctx):
        if ctx.params["value"] == 2:
            raise KeyboardInterrupt
        return built(ctx)

    def logging(self, message, *args, **kwargs):
        if message.startswith("sweep point 2/3"):
            raise KeyboardInterrupt
        return log(self, message, *args, **kwargs)

    if where == "build":
        monkeypatch.setattr(code, "build", interrupted)
    else:
        monkeypatch.setattr(Reporter, "log", logging)
    status, out, err = axq_cli("--quiet", "sweep", "number,value:=1:2:3", ",", "get", "doubled")
    lines = err.splitlines()
    assert status == 130 and len(lines) == 1 and lines[0].startswith("axq: ") and "interrupted" in lines[0]
    if where == "build":
        assert lines[0].startswith("axq: sweep interrupted at point 2/3 (value=2) after 1 finished point")
        assert out.splitlines()[1].split()[:2] == ["1", "2"] and len(out.splitlines()) == 2  # the finished row
