"""A real Server sweep on digits through the CLI: cached points kept, table, CSV, JSON, PNG, list.

One work collection per module, so the digits chain is built once and the sweep runs once.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import axq
from axq import cli
from axq.progress import Reporter
from axq.recipe import all_recipes

SERVER = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=PerformanceOnly,loadgen_scenario=Server"
SWEEP = f"{SERVER},loadgen_target_qps:=400:800:1600"
GETTERS = "performance,result_valid"


@pytest.fixture(scope="module")
def swept(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the 800 QPS point, then sweep through the CLI with --json, --csv and --plot."""
    cached = axq.byquery(f"{SERVER},loadgen_target_qps=800", reporter=Reporter("quiet"))
    started = cached.manifest["provenance"]["started"]
    out = tmp_path_factory.mktemp("files")
    code, rows = run_cli("--quiet", "--json", "sweep", SWEEP, ",", "get", GETTERS,
                         f"--csv={out / 'sweep.csv'}", f"--plot={out / 'sweep.png'}")
    return {"cached": cached, "started": started, "code": code, "rows": json.loads(rows), "out": out}


def run_cli(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; return its exit code and what it printed."""
    import contextlib
    import io

    all_recipes.cache_clear()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(list(args))
    return code, stdout.getvalue()


def test_every_point_ran_and_an_invalid_one_is_a_result(swept):
    assert swept["code"] == 0
    assert [r["loadgen_target_qps"] for r in swept["rows"]] == [400, 800, 1600]
    for row in swept["rows"]:
        assert row["performance"] > 0
        assert (row["error"] is None) is row["valid"]  # an INVALID point's error says why; it is no failure
        assert row["valid"] is row["result_valid"] and isinstance(row["valid"], bool)


def test_the_cached_point_was_not_rebuilt(swept):
    cached = swept["cached"]
    assert swept["rows"][1]["entry"] == cached.name
    assert axq.byname(cached.name).manifest["provenance"]["started"] == swept["started"]


def test_csv_holds_the_rows(swept):
    with open(swept["out"] / "sweep.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [int(r["loadgen_target_qps"]) for r in table] == [400, 800, 1600]
    assert [float(r["performance"]) for r in table] == [r["performance"] for r in swept["rows"]]
    assert [r["entry"] for r in table] == [r["entry"] for r in swept["rows"]]


def test_the_plot_is_a_png_of_sensible_size(swept):
    from PIL import Image

    with Image.open(swept["out"] / "sweep.png") as image:
        assert image.format == "PNG" and image.width >= 500 and image.height >= 250


def test_list_shows_the_sweep_sorted_by_target(swept):
    code, out = run_cli("list", "loadgen_output", "--columns=loadgen_scenario,loadgen_target_qps,performance,"
                        "result_valid", "--sort=loadgen_target_qps")
    header, *lines = out.splitlines()
    assert code == 0 and header.split()[1:5] == ["loadgen_scenario", "loadgen_target_qps", "performance",
                                                 "result_valid"]
    invalid = [r for r in swept["rows"] if r["valid"] is False]
    assert header.split()[5:] == (["invalid"] if invalid else [])  # why an INVALID run is, when one is
    assert all(r["error"] in out for r in invalid)
    assert [line.split()[2] for line in lines] == ["400", "800", "1600"]
    valid = {r["loadgen_target_qps"]: str(r["valid"]) for r in swept["rows"]}
    assert [line.split()[5] for line in lines] == [valid[400], valid[800], valid[1600]]  # after `N samples/s`
