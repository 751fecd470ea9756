"""axq installs as a wheel: recipes and grammar travel inside it, and it runs without the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, TOY_RECIPES


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from this checkout and install it (without dependencies) into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((root / "dist").glob("axq-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(root / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    recipes = root / "recipes"
    shutil.copytree(TOY_RECIPES / "toy_number", recipes / "toy_number")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root / "site"), "AXQ_ENTRIES": str(recipes),
           "XDG_DATA_HOME": str(root / "data")}
    env.pop("AXQ_WORK_COLLECTION", None)
    return {"script": root / "site" / "bin" / "axq", "cwd": elsewhere, "env": env, "root": root}


def run(installed: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(installed["script"]), *args], cwd=installed["cwd"],
                          env=installed["env"], capture_output=True, text=True, timeout=120, check=False)


def test_the_wheel_carries_recipes_and_grammar_and_runs_outside_the_checkout(installed):
    where = run(installed, "where")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == str(installed["root"] / "data" / "axq" / "work_collection")
    rules = run(installed, "--json", "rules", "loadgen_output,classified_digits")
    assert rules.returncode == 0, rules.stderr
    chosen = json.loads(rules.stdout)[0]
    assert chosen["matches"] and chosen["recipe_path"].startswith(str(installed["root"] / "site" / "axq" / "_entries"))
    assert run(installed, "byquery", "number,value=6", ",", "get", "doubled").stdout == "12\n"
    cached = run(installed, "byquery", "number,value=6", ",", "get", "doubled")
    assert (cached.returncode, cached.stdout, cached.stderr) == (0, "12\n", "")


def test_the_installed_axq_is_not_the_checkout(installed):
    found = subprocess.run([sys.executable, "-c", "import axq, axq.locations as l; print(axq.__file__); "
                            "print(l.builtin_entries())"], cwd=installed["cwd"], env=installed["env"],
                           capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert all(path.startswith(str(installed["root"] / "site")) for path in found), found
