"""README.md as a new user meets it: its first lines, its `axq ...` one-liners and its Python example, run as written.

The one-liners are those of the top, "The query language" and "MLPerf LoadGen benchmarks",
taken from the README when the tests are collected, so that an edited example is the one
tested. They run through the real CLI (in this process, real LoadGen) on one work
collection for the module: the digits chain is built once. A `$ axq ...` line is followed
by the output it must print; any other line must end in a getter this module knows how
to check. Lines that need data the tests do not have are left out by EXCLUDED, with why
(the README's "the same lines work with `classified_fashion_mnist`" is prose, not a line).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
SECTIONS = ("", "The query language", "MLPerf LoadGen benchmarks")  # "" is the top, before the first `##`
EXCLUDED = {
    "classified_imagenet": "needs an ImageNet validation folder and ResNet50 weights at the paths it names "
                           "(tests/test_mlperf.py runs that path on a folder it writes)",
}
ACCURACY_REPORT = re.compile(r"accuracy=(\d+\.\d+)%, good=\d+, total=450")


def accuracy(out: str) -> bool:
    return 90 <= float(out) <= 100


def accuracy_report(out: str) -> bool:
    found = ACCURACY_REPORT.fullmatch(out)
    return found is not None and 90 <= float(found[1]) <= 100


def performance(out: str) -> bool:
    return float(out.split()[0]) > 0  # samples/s (Offline, Server) or ns (SingleStream, MultiStream)


CHECKS: dict[str, Callable[[str], bool]] = {"accuracy": accuracy, "accuracy_report": accuracy_report,
                                            "performance": performance}


@dataclass(frozen=True)
class Example:
    """One `axq ...` line of the README, with the output shown under it (for a `$ axq ...` line)."""

    line: int
    words: tuple[str, ...]
    shown: tuple[str, ...] = ()

    @property
    def getter(self) -> str | None:
        return self.words[-1] if len(self.words) > 2 and self.words[-2] == "get" else None


def sections(text: str) -> dict[str, list[tuple[int, str]]]:
    """Split the README into its `##` sections: title -> numbered lines ("" for the top)."""
    found: dict[str, list[tuple[int, str]]] = {"": []}
    title = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            title = line[3:].strip()
            found[title] = []
        else:
            found[title].append((number, line))
    return found


def examples(lines: list[tuple[int, str]]) -> list[Example]:
    """Return the indented `axq ...` and `$ axq ...` lines of a section, with the output shown under a `$` line."""
    found = []
    for index, (number, line) in enumerate(lines):
        command = re.fullmatch(r" {4}(\$ )?axq (.+)", line)
        if not command:
            continue
        shown: list[str] = []
        if command[1]:
            for _, after in lines[index + 1:]:
                if not after.startswith("    ") or re.match(r" {4}(\$ )?axq ", after):
                    break
                shown.append(after[4:])
        found.append(Example(number, tuple(shlex.split(command[2])), tuple(shown)))
    return found


def readme_examples() -> list[Example]:
    """Return the README's one-liners of SECTIONS that the tests can run, each once."""
    text = sections(README.read_text())
    chosen, seen = [], set()
    for title in SECTIONS:
        assert title in text, f"README.md has no section `## {title}`"
        for example in examples(text[title]):
            if example.words not in seen and not any(key in " ".join(example.words) for key in EXCLUDED):
                seen.add(example.words)
                chosen.append(example)
    return chosen


EXAMPLES = readme_examples()


def test_the_readme_has_the_examples_this_module_runs():
    scenarios = {w.split("loadgen_scenario=")[1].split(",")[0] for e in EXAMPLES for w in e.words
                 if "loadgen_scenario=" in w}
    assert scenarios == {"Offline", "SingleStream", "Server", "MultiStream"}
    assert any(e.shown for e in EXAMPLES), "the syntax-error example with its caret"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"README.md:{e.line}")
def test_a_readme_one_liner_as_written(collection: Path, axq_cli, example: Example):
    code, out, err = axq_cli(*example.words)
    if example.shown:  # an error the README shows in full: one line (the caret under the column it names)
        assert code == 2 and out == ""
        assert err.rstrip("\n").splitlines() == list(example.shown)
        return
    assert example.getter in CHECKS, f"README.md:{example.line} ends in no getter this test checks: add one"
    assert code == 0, err
    assert CHECKS[example.getter](out.strip()), out


def test_the_readme_python_example_as_written(collection: Path, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert code, "README.md has no ```python block"
    names: dict = {}
    exec(compile(code[1], f"{README}:python", "exec"), names)
    out = capsys.readouterr().out
    assert accuracy(str(names["entry"].get("accuracy")))
    assert str(names["entry"].path) in out.splitlines()[0]
    assert re.search(r"^ +\[cached\] model_small_cnn_model-\w+$", out, re.MULTILINE)  # the plan's tree
    assert re.search(r"^(nothing to build|\d+ to build \(.*\)).*; \d+ cached$", out, re.MULTILINE)
    assert "Node(producer" not in out and "Entry('loadgen_program_classified_digits" in out
    rows = names["rows"]
    assert [row["loadgen_target_qps"] for row in rows] == [1000, 2000]
    assert all(row["valid"] and row["performance"] > 0 for row in rows), rows


# -- the first lines: `make demo`, `make test`, and how `axq` gets onto PATH ----------------------


def make(*args: str, path: str | None = None) -> str:
    """Return what `make ARGS` prints in the checkout (`-n`: the commands it would run, none run).

    Not the flags and variables of a `make test` that runs these tests: MAKEFLAGS would pass them on.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PATH"] = path or env["PATH"]
    return subprocess.run(["make", "--no-print-directory", "-s", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, check=True, timeout=60).stdout


def path_without(bin_dir: str) -> str:
    """Return PATH without a folder (so that `axq` is not found there)."""
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if os.path.abspath(p) != bin_dir)


def test_the_readme_opens_with_the_two_commands_and_the_line_that_puts_axq_on_path():
    top = [line.strip() for _, line in sections(README.read_text())[""] if line.startswith("    ")]
    assert top[0].startswith("make demo ") and top[1].startswith("make test ")
    hint = make("hint", path=path_without(str(REPO / ".venv" / "bin"))).splitlines()[-1].strip()
    assert hint == ". .venv/bin/activate" and top[2].startswith(hint + " ")


def test_the_line_make_prints_puts_this_venvs_axq_on_path():
    venv = sys.prefix
    path = path_without(os.path.join(venv, "bin"))
    said = make("hint", f"VENV={venv}", path=path).splitlines()
    assert "not on PATH" in said[0]
    found = subprocess.run(["bash", "-c", f"{said[-1].strip()} && command -v axq"], env={**os.environ, "PATH": path},
                           text=True, capture_output=True, check=True, timeout=60).stdout.strip()
    assert found == os.path.join(venv, "bin", "axq")
    assert make("hint", f"VENV={venv}", path=os.path.join(venv, "bin") + os.pathsep + path) == ""  # nothing to say


def test_make_demo_and_make_install_end_with_that_line():
    hint = make("-n", "hint")
    assert make("-n", "demo").endswith(hint) and make("-n", "install").endswith(hint)
    assert hint not in make("-n", "test")  # the test run's last word is pytest's
