"""Time the cached digits query as users type it against `python -c pass`, at 10 and 10,000 entries.

    axq byquery loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly,\
loadgen_scenario=Offline , get accuracy

runs as the installed `axq` console script beside this interpreter, timed from outside the
process; `python -c pass` runs with the same interpreter. The digits chain (dataset,
preprocessing, training, the LoadGen run) is built once into a temporary work collection,
which is then copied, one copy per size, and padded with copies of the LoadGen entry's
manifest (new identities, indexed by `axq reindex`, as hand-copied entries are) to 10 and
10,000 entries. Rounds of the three commands (`python -c pass`, the query on 10 entries, on
10,000) alternate (A B C A B C ...) so that drift in the machine's speed hits all alike;
the figures are medians. The timed rounds hold the machine-wide measurement lock (axq.measure:
they wait while another measurement runs) and say how busy the machine was meanwhile.
Budget: the cached query at most 1.6x `python -c pass`, and flat from 10 to 10,000 entries
(at most 1.1x). Also checks that the cached path imports none of torch, numpy, lark or LoadGen.
Editing a recipe's code (entries/*/, entries/lib/) misses the memo once: the memo key stats
every code file (axq.locations.recipe_fingerprint).

Bytecode: the commands run with PYTHONDONTWRITEBYTECODE unset, as on a user's machine,
where axq's modules are compiled once; with it set every run recompiles axq's sources.

    .venv/bin/python benchmarks/bench_overhead.py [--runs 21] [--sizes 10,10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from axq.measure import measurement

QUERY = ["byquery", "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly,"
         "loadgen_scenario=Offline", ",", "get", "accuracy"]
HEAVY = {"torch", "numpy", "lark", "mlperf_loadgen", "axq.query", "axq.resolve", "axq.verbs"}
BUDGET = 1.6
FLAT = 1.1


def installed_script() -> str:
    """Return the `axq` console script installed beside this interpreter."""
    script = Path(sys.executable).parent / "axq"
    if not script.is_file():
        sys.exit(f"no axq script beside {sys.executable}: install axq into this environment first")
    return str(script)


def environment(collection: Path) -> dict[str, str]:
    """Return the environment of the timed commands: this collection, shipped recipes, bytecode on."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "AXQ_ENTRIES")}
    return {**env, "AXQ_WORK_COLLECTION": str(collection)}


def build_chain(script: str, env: dict[str, str]) -> str:
    """Build the digits chain (or find it cached); return the accuracy it prints."""
    result = subprocess.run([script, "--quiet", *QUERY], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"building the digits chain failed:\n{result.stderr}")
    return result.stdout.strip()


def pad(collection: Path, size: int, script: str, env: dict[str, str]) -> None:
    """Add copies of the LoadGen entry's manifest until the collection holds `size` entries, then reindex."""
    names = [p.name for p in collection.iterdir() if not p.name.startswith(".")]
    seed_name = next(n for n in names if n.startswith("loadgen_program"))
    seed = json.loads((collection / seed_name / "manifest.json").read_text())
    stem = seed_name.rsplit("-", 1)[0]
    for number in range(len(names), size):
        identity = f"{number:016x}" + seed["identity"][16:]
        name = f"{stem}-{identity[:16]}"
        (collection / name).mkdir()
        copy = {**seed, "identity": identity, "name": name, "params": {**seed["params"], "copy_number": number}}
        (collection / name / "manifest.json").write_text(json.dumps(copy))
    subprocess.run([script, "reindex"], env=env, check=True, capture_output=True)


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Run argv to completion; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def interleaved(commands: list[tuple[list[str], dict[str, str]]], runs: int, cwd: str) -> list[float]:
    """Time the commands in alternating rounds (A B C A B C ...) after two warm-ups each; return their medians."""
    for argv, env in commands * 2:
        run_once(argv, env, cwd)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for spent, (argv, env) in zip(times, commands, strict=True):
            spent.append(run_once(argv, env, cwd))
    return [statistics.median(spent) for spent in times]


def imported_modules(script: str, env: dict[str, str], cwd: str) -> set[str]:
    """Return the modules the cached query imports (from -X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", script, *QUERY], env=env, cwd=cwd,
                            capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}


def busy(report: dict | None) -> str:
    """Say how much of the machine other processes used while the rounds ran (from axq.measure)."""
    share = (report or {}).get("other_cpu_share")
    return "" if share is None else f" | others used {100 * share:.0f}% of the CPU meanwhile"


def collections(root: Path, sizes: list[int], script: str) -> list[Path]:
    """Build the digits chain into the first collection; make one copy padded to each size."""
    first = root / f"wc{sizes[0]}"
    print(f"accuracy: {build_chain(script, environment(first))}")
    made = []
    for size in sizes:
        collection = root / f"wc{size}"
        if not collection.exists():
            shutil.copytree(first, collection, symlinks=True)
        pad(collection, size, script, environment(collection))
        made.append(collection)
    return made


def main() -> None:
    """Build, pad, time, and print one line per collection size plus the verdict lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--sizes", default="10,10000")
    args = parser.parse_args()
    script, root = installed_script(), Path(tempfile.mkdtemp(prefix="axq-bench-"))
    sizes, cwd = sorted(map(int, args.sizes.split(","))), str(root)
    print(f"query: axq {' '.join(QUERY)}")
    try:
        made = collections(root, sizes, script)
        envs = [environment(collection) for collection in made]
        commands = [([sys.executable, "-c", "pass"], envs[0]), *(([script, *QUERY], env) for env in envs)]
        with measurement("bench_overhead", log=print) as timed:
            bare, *cached = interleaved(commands, args.runs, cwd)
        for size, spent in zip(sizes, cached, strict=True):
            print(f"{size:>6} entries: python -c pass {bare * 1000:5.1f} ms | cached query {spent * 1000:5.1f} ms"
                  f" | ratio {spent / bare:.2f} (budget <= {BUDGET})")
        heavy = imported_modules(script, envs[-1], cwd) & HEAVY
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{sizes[-1]} vs {sizes[0]} entries: {cached[-1] / cached[0]:.2f}x the time (budget <= {FLAT})")
    print(f"medians of {args.runs} rounds, commands interleaved{busy(timed.report)}")
    print("heavy modules on the cached path:", ", ".join(sorted(heavy)) or "none")


if __name__ == "__main__":
    main()
