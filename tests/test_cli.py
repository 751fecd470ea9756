"""The command line: every command's exit code, messages, --json, and the cached path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_axq


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["byquery", "sum,value=2", ",", "get", "total"], 0, "2"),
        (["byquery", "number", "--value=4", ",", "get", "doubled"], 0, "8"),
        (["byquery", "number,value=4", ",", "get", "squared"], 0, "16"),
        (["byquery", "number", ",", "get_path"], 0, "toy_number_number_1-"),
        (["plan", "sum,value=3"], 0, "[build ]"),
        (["rules", "number"], 0, "CHOSEN toy_number (number)"),
        (["list", "number"], 0, "no entries match `number`"),
        (["where"], 0, "wc"),
        (["reindex"], 0, ""),
        (["gc"], 0, "leftovers of failed or killed builds"),
        (["--help"], 0, "usage: axq"),
        ([], 2, "usage: axq"),
        (["bogus"], 2, "unknown command `bogus`"),
        (["lst"], 2, "did you mean `list`"),
        (["byquery", "numbr", ",", "get", "x"], 2, "did you mean `number`"),
        (["byquery", "number,value=", ",", "get", "x"], 2, "column 14"),
        (["byquery", "number", ",", "get", "dubled"], 2, "did you mean `doubled`"),
        (["byquery", "number", ",", "frobnicate"], 2, "use `get KEY`"),
        (["byquery", "number", ",", ",", "get", "x"], 2, "empty stage"),
        (["byquery", "failing", ",", "get", "x"], 1, "the input data is missing"),
        (["byquery", "amb", ",", "get", "x"], 2, "several rules equally well"),
        (["byquery", "cyc_a", ",", "get", "x"], 2, "dependency cycle"),
        (["byquery", "number,value:=1:2", ",", "get", "x"], 2, "axq sweep"),
        (["byname", "no-such-entry", ",", "get", "x"], 2, "no entry `no-such-entry`"),
        (["show", "no-such-entry"], 2, "no entry"),
        (["rm", "number,value=99"], 2, "nothing matches"),
        (["byquery", "number", "--bad-key!=1"], 2, "bad override"),
    ],
)
def test_exit_codes_and_messages(work, axq_cli, args, code, fragment):
    got, out, err = axq_cli(*args)
    assert got == code, (out, err)
    assert fragment in (out + err)
    assert "Traceback" not in err


def test_syntax_error_shows_a_caret(work, axq_cli):
    code, _, err = axq_cli("byquery", "number,,value=1", ",", "get", "x")
    lines = err.splitlines()
    assert code == 2
    assert lines[1].strip() == "number,,value=1"
    assert lines[2].index("^") - lines[1].index("n") == 7


def test_bug_in_recipe_shows_traceback_and_log(work):
    result = run_axq("byquery", "failing,kind=bug", ",", "get", "x")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: a bug in the recipe" in result.stderr
    assert "log:" in result.stderr


def test_debug_shows_traceback_for_user_errors(work):
    result = run_axq("--debug", "byquery", "numbr", ",", "get", "x")
    assert result.returncode != 0 and "Traceback" in result.stderr and "NoProducerError" in result.stderr


def test_json_outputs(work, axq_cli):
    axq_cli("byquery", "sum,value=2", ",", "get", "total")
    _, out, _ = axq_cli("--json", "list", "number", "--columns=value,doubled")
    assert json.loads(out)[0]["doubled"] == 4
    _, out, _ = axq_cli("--json", "plan", "sum,value=2")
    assert [s["cached"] for s in json.loads(out)] == [True, True]
    _, out, _ = axq_cli("--json", "rules", "number")
    first = json.loads(out)[0]
    assert first.pop("recipe_path").endswith("toy_number")
    assert first == {"rule": "toy_number (number)", "id": "toy_number[0](number)", "matches": True, "reason": None,
                     "specificity": 1, "unasked": 0}
    _, out, _ = axq_cli("byquery", "number,value=2", ",", "get", "params")
    assert json.loads(out) == {"value": 2, "label": "x"}


def test_show_and_log(work, axq_cli):
    _, path, _ = axq_cli("byquery", "number,value=2", ",", "get_path")
    name = path.strip().rsplit("/", 1)[1]
    _, out, _ = axq_cli("--json", "show", name)
    shown = json.loads(out)
    assert shown["params"]["value"] == 2 and "number.txt" in shown["files"]
    _, out, _ = axq_cli("show", name, "--log")
    assert "wrote 2" in out


def test_rm_and_wipe(work, axq_cli):
    axq_cli("byquery", "sum", ",", "get", "total")
    code, _, err = axq_cli("rm", "number")
    assert code == 2 and "--force" in err
    code, out, _ = axq_cli("rm", "number", "--force")
    assert code == 0 and out.count("removed") == 2
    axq_cli("byquery", "sum", ",", "get", "total")
    code, out, _ = axq_cli("work_collection", ",", "remove")
    assert code == 0 and "removed 2 entries" in out
    assert axq_cli("list")[1] == "" and "no entries match" in axq_cli("list")[2]


def test_work_collection_flag(work, tmp_path, axq_cli):
    other = tmp_path / "elsewhere"
    code, out, _ = axq_cli(f"--work-collection={other}", "byquery", "number", ",", "get_path")
    assert code == 0 and out.startswith(str(other))
    assert axq_cli(f"--work-collection={other}", "where")[1].strip() == str(other)


HEAVY = {"lark", "axq.query", "axq.resolve", "axq.verbs", "axq.api", "torch", "numpy", "mlperf_loadgen"}
DIGITS = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly,loadgen_scenario=Offline"


def imported_by(*args: str) -> tuple[str, set[str]]:
    """Run `python -X importtime -m axq ARGS`; return its output and the modules it imported."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "axq", *args], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return result.stdout, {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}


def test_cached_query_imports_no_parser_and_reads_the_memo(work):
    assert run_axq("byquery", "sum,value=2", ",", "get", "total").stdout.strip() == "2"
    out, imported = imported_by("byquery", "sum,value=2", ",", "get", "total")
    assert out.strip() == "2" and "axq.entry" in imported
    assert not imported & HEAVY


def test_cached_digits_query_imports_nothing_heavy(collection):
    """The query users type: its LoadGen getter must come from a light module."""
    first = run_axq("--quiet", "byquery", DIGITS, ",", "get", "accuracy")
    assert first.returncode == 0, first.stderr
    out, imported = imported_by("byquery", DIGITS, ",", "get", "accuracy")
    assert out == first.stdout and 90 < float(out) <= 100
    assert not imported & HEAVY
