"""The verb registry: help from the declarations, options per verb, both value forms, parameters, plans."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

import axq
from axq import verbs
from axq.progress import duration
from axq.verbs.command import GLOBAL_OPTIONS
from tests.conftest import TOY_RECIPES


@pytest.mark.parametrize("name", sorted(verbs.VERBS))
def test_every_verb_has_help(work, axq_cli, name):
    code, out, err = axq_cli(name, "--help")
    verb = verbs.VERBS[name]
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: axq {name}") and verb.help in out.replace("\n", " ").lower()
    for option in (*verb.options, *(o for s in verb.stages for o in s.options), *GLOBAL_OPTIONS):
        assert option.name in out
    assert axq_cli("help", name)[1] == out


def test_main_help_lists_every_verb_from_the_registry(work, axq_cli):
    code, out, _ = axq_cli("--help")
    assert code == 0 and out.startswith("usage: axq")
    listed = [line.split()[0] for line in out.split("verbs:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(verbs.VERBS)
    assert axq_cli("-h")[1] == out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["list", "--force"], ["`axq list` takes no option `--force`", "`axq rm`", "`axq byquery ... , remove`"]),
        (["plan", "number", "--csv=x"],
         ["`axq plan` takes no option `--csv`", "`axq sweep` and `axq explore` take it"]),
        (["byname", "x", "--sort=y"], ["`axq byname` takes no option `--sort`", "`axq list` takes it"]),
        (["list", "--colums=value"], ["did you mean `--columns`?"]),
        (["byquery", "number", "--jsn", ",", "get", "doubled"], ["did you mean `--json`?", "--jsn=VALUE"]),
        (["rules", "number", "--value=2"], ["`axq rules` takes no option `--value`"]),
        (["list", "--sort"], ["`--sort` needs a value"]),
        (["rm", "number", "--force=yes"], ["`--force` takes no value"]),
        (["byquery", "number", "--value", "4", ",", "get", "doubled"], ["write `--value=VALUE`"]),
        (["where", "extra"], ["usage: axq where"]),
        (["plan"], ["usage: axq plan QUERY"]),
        (["plan", "number", ",", "get", "x"], ["`axq plan` takes no `, ...` stages"]),
        (["sweep", "number,value:=1:2"], ["usage: axq sweep QUERY", ", get KEY[,KEY...]"]),
        (["work_collection", ",", "wipe"], ["after `axq work_collection`, use `remove`"]),
        (["byquery", "number", ",", "get"], ["usage: axq byquery"]),
        (["byquery", "number", ",", "show", "--force"], ["`axq byquery` takes no option `--force`"]),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(work, axq_cli, args, fragments):
    code, out, err = axq_cli(*args)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert not work.exists()  # refused before anything was built


@pytest.mark.parametrize("form", [["--csv", "{path}"], ["--csv={path}"]])
def test_sweep_writes_csv_in_both_option_forms(work, tmp_path, axq_cli, form):
    path = tmp_path / "out.csv"
    words = [w.format(path=path) for w in form]
    code, out, _ = axq_cli("-q", "sweep", "number,value:=1:2:3", ",", "get", "doubled", *words)
    assert code == 0 and "doubled" in out
    with open(path) as handle:
        assert [int(r["doubled"]) for r in csv.DictReader(handle)] == [2, 4, 6]


@pytest.mark.parametrize(
    "args",
    [
        ["--columns", "value,doubled", "--sort", "value"],
        ["--columns=value,doubled", "--sort=value"],
        ["--sort", "value", "number", "--columns=value,doubled"],
    ],
)
def test_list_options_in_any_form_and_place(work, axq_cli, args):
    for value in (3, 1):
        axq_cli("-q", "byquery", f"number,value={value}", ",", "get", "doubled")
    code, out, _ = axq_cli("--json", "list", *args)
    assert code == 0
    assert [(r["value"], r["doubled"], r["stale"]) for r in json.loads(out)] == [(1, 2, None), (3, 6, None)]


def test_global_options_anywhere(work, tmp_path, axq_cli):
    other = tmp_path / "other"
    code, out, _ = axq_cli("byquery", "number", "--work-collection", str(other), "-q", ",", "get", "stored")
    assert (code, out) == (0, "1\n")
    assert axq_cli("where", "--work-collection", str(other))[1].strip() == str(other)
    assert not work.exists()


def test_overrides_take_the_equals_form_and_reach_the_query(work, axq_cli):
    assert axq_cli("-q", "byquery", "number", "--value=4", ",", "get", "doubled")[1] == "8\n"
    assert axq_cli("-q", "byquery", "number", ",", "get", "doubled", "--value=5")[1] == "10\n"


def test_params_lists_the_rules_parameters_and_where_each_value_comes_from(work, axq_cli):
    code, out, _ = axq_cli("params", "planned_sum,count=3")
    header, *rows = out.splitlines()
    assert code == 0 and header.split() == ["name", "type", "value", "from", "default", "allowed", "description"]
    assert rows[0].split()[:7] == ["count", "int", "3", "query", "2", ">=", "0"]
    assert rows[1].split()[:5] == ["limit", "int", "5", "default", "5"]
    code, out, _ = axq_cli("--json", "params", "number", "--value=7")
    by_name = {p["name"]: p for p in json.loads(out)}
    assert by_name["value"]["value"] == 7 and by_name["value"]["source"] == "query"
    assert by_name["label"] == {**by_name["label"], "value": "x", "source": "default", "type": "str"}
    assert not work.exists()


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("planned_sum,count=-1", "must be at least 0"), ("number,value=abc", "must be an integer")],
)
def test_params_refuses_a_bad_value_with_exit_2(work, axq_cli, query, fragment):
    code, _, err = axq_cli("params", query)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_plan_shows_estimates_and_a_summary(work, axq_cli):
    code, out, _ = axq_cli("plan", "planned_sum,count=2")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("[build ] toy_planned_planned_sum") and "about 2 s" in lines[0]
    assert lines[-1] == "3 to build (2 toy_number, 1 toy_planned), about 2 s (some unknown); 0 cached"
    axq_cli("-q", "byquery", "planned_sum,count=2", ",", "get", "total")
    assert axq_cli("plan", "planned_sum,count=2")[1].splitlines()[-1] == "nothing to build; 3 cached"
    steps = json.loads(axq_cli("--json", "plan", "planned_sum,count=3")[1])
    recorded = axq.byquery("planned_sum,count=2").manifest["provenance"]["duration_s"]  # a like build, here
    assert [(s["cached"], s["estimate_s"]) for s in steps] == [(False, recorded), (True, None), (True, None),
                                                               (False, None)]
    assert "about 1 s, from 1 build here" in axq_cli("plan", "planned_sum,count=3")[1].splitlines()[0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1 s"), (12.4, "12 s"), (89, "89 s"), (600, "10 min"), (3600, "1 h"), (7800, "2 h 10 min")],
)
def test_durations_read_as_a_person_says_them(seconds, text):
    assert duration(seconds) == text


def test_list_marks_entries_built_by_an_older_recipe_version(work, tmp_path, monkeypatch, axq_cli):
    recipes = tmp_path / "recipes"
    shutil.copytree(TOY_RECIPES / "toy_number", recipes / "toy_number")
    monkeypatch.setenv("AXQ_ENTRIES", str(recipes))
    axq_cli("-q", "byquery", "number,value=2", ",", "get", "doubled")
    assert "stale" not in axq_cli("list")[1] and "superseded" not in axq_cli("list")[1]
    recipe = recipes / "toy_number" / "recipe.json"
    recipe.write_text(recipe.read_text().replace('"version": 1', '"version": 2'))
    header, row = axq_cli("list")[1].splitlines()
    assert header.split() == ["name", "tags", "superseded"] and "version" in row
    (listed,) = json.loads(axq_cli("--json", "list")[1])
    assert "version" in listed["superseded"] and listed["stale"] is None


# -- output paths, work collections, choices: checked before anything runs (issue 22) ----------


def one_line_error(err: str) -> str:
    """Return the one `axq:` line of an error (progress lines aside), checking there is no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("axq:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("where", ["missing", "directory"])
@pytest.mark.parametrize("option", ["--csv", "--plot"])
def test_sweep_checks_its_output_files_before_the_first_point(work, tmp_path, axq_cli, option, where):
    path = tmp_path / "no" / "such" / "x" if where == "missing" else tmp_path
    code, out, err = axq_cli("sweep", "number,value:=1:2", ",", "get", "doubled", f"{option}={path}")
    line = one_line_error(err)
    assert code == 1 and out == "" and option in line
    assert ("no such directory" if where == "missing" else "is a directory") in line
    assert not work.exists()  # no point ran


def test_explore_checks_its_output_files_before_the_first_configuration(work, tmp_path, axq_cli):
    code, _, err = axq_cli("explore", "explored,precision:=fp32:bf16", f"--csv={tmp_path / 'no' / 'x.csv'}")
    assert code == 1 and "no such directory" in one_line_error(err)
    assert not work.exists()


@pytest.mark.parametrize(("where", "fragment"), [("missing", "no such directory"), ("directory", "is a directory")])
def test_export_checks_its_archive_path_first(work, tmp_path, axq_cli, where, fragment):
    axq_cli("-q", "byquery", "number", ",", "get", "doubled")
    out = tmp_path / "nonexistent" / "dir" / "x.tgz" if where == "missing" else tmp_path
    code, _, err = axq_cli("export", "number", "--out", str(out))
    assert code == 1 and fragment in one_line_error(err)
    assert not any(p.suffix == ".tgz" for p in tmp_path.rglob("*"))  # nothing half-written


@pytest.mark.parametrize("verb", [["list"], ["gc"], ["reindex"], ["show", "x"], ["byname", "x"], ["rm", "x"]])
def test_read_verbs_refuse_a_work_collection_that_is_not_there(work, axq_cli, verb):
    code, out, err = axq_cli("--work-collection", "/proc/nope", *verb)
    assert (code, out) == (1, "")
    assert "work collection /proc/nope does not exist" in one_line_error(err)


def test_a_work_collection_that_is_a_file_is_refused(work, tmp_path, axq_cli):
    path = tmp_path / "file"
    path.write_text("")
    code, _, err = axq_cli("--work-collection", str(path), "list")
    assert code == 1 and "is a file, not a folder" in one_line_error(err)


def test_an_empty_default_collection_still_lists_nothing(work, axq_cli):
    code, out, err = axq_cli("list")
    assert (code, out) == (0, "") and "no entries match" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--columns=doubled", "--sort=doubld"], "did you mean `doubled`?"),
        (["--columns=dubled"], "no listed entry has `dubled`; did you mean `doubled`?"),
        (["--columns=value", "--sort=val"], "did you mean `value`?"),
        (["--sort=doubled"], "add it to --columns to sort by it"),
    ],
)
def test_list_refuses_unknown_columns_and_sort_keys_with_a_near_miss(work, axq_cli, args, fragment):
    axq_cli("-q", "byquery", "number,value=2", ",", "get", "doubled")
    code, out, err = axq_cli("list", *args)
    assert (code, out) == (2, "") and fragment in one_line_error(err)


def test_gc_speaks_text_and_json_with_json(work, axq_cli):
    axq_cli("-q", "byquery", "number", ",", "get", "doubled")
    code, out, _ = axq_cli("gc")
    assert code == 0 and out == "removed 0 leftovers of failed or killed builds; indexed 1 entry\n"
    assert json.loads(axq_cli("--json", "gc")[1]) == {"leftovers_removed": 0, "entries_indexed": 1}


def test_invalid_points_say_why_and_every_figure_carries_its_unit(work, axq_cli):
    code, out, _ = axq_cli("-q", "sweep", "verdict,latency:=1000:8000", ",", "get", "latency_ns,throughput")
    header, valid, invalid = out.splitlines()
    assert code == 0  # an INVALID run is a result, not a failure
    assert "1000 ns" in valid and "1e+06 samples/s" in valid and "True" in valid
    assert "False" in invalid and "latency 8000 ns above the 5000 ns bound" in invalid
    code, out, _ = axq_cli("list", "verdict", "--columns=latency,latency_ns,throughput", "--sort=latency")
    header, valid, invalid = out.splitlines()
    assert header.split() == ["name", "latency", "latency_ns", "throughput", "invalid"]
    assert "1000 ns" in valid and valid.rstrip().endswith("-")
    assert "125000 samples/s" in invalid and invalid.endswith("latency 8000 ns above the 5000 ns bound")
    rows = json.loads(axq_cli("--json", "list", "verdict", "--columns=latency_ns")[1])
    assert sorted(r["invalid"] or "" for r in rows) == ["", "latency 8000 ns above the 5000 ns bound"]
    assert sorted(r["latency_ns"] for r in rows) == [1000, 8000]  # JSON keeps the numbers


def test_explore_notes_say_why_a_configuration_is_invalid():
    from axq.exploration import _note

    row = {"skipped": None, "error": "performance run INVALID: too slow", "valid": False, "log": None}
    assert _note(row) == "performance run INVALID: too slow"
    assert _note({**row, "valid": None, "error": "boom"}) == "failed: boom"
