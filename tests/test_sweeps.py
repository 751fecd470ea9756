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
    assert out.splitlines()[1].split()[:2] == ["1", "True"]
    rerun = axq_subprocess("sweep", query, ",", "get", "released")
    with open(gate / "started") as started:
        started.read()
    with open(gate / "release", "w") as release:
        release.write("go")
    out, _ = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and len(out.splitlines()) == 3
    assert (gate / "builds.txt").read_text().count("\n") == 3  # point 1 once, point 2 twice
