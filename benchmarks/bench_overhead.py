"""Time the cached digits query as users type it against `python -c pass`, at 10 and 10,000 entries.

    axq byquery loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly,\
loadgen_scenario=Offline , get accuracy

runs as the installed `axq` console script beside this interpreter, timed from outside the
process; `python -c pass` runs with the same interpreter. The digits chain (dataset,
preprocessing, training, the LoadGen run) is built once into a temporary work collection,
which is then padded with copies of the LoadGen entry's manifest (new identities, indexed
by `axq reindex`, as hand-copied entries are) to 10 and then 10,000 entries. Rounds of the
two commands alternate (A B A B ...) so that drift in the machine's speed hits both alike;
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


def interleaved(a: list[str], b: list[str], runs: int, env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Time a and b in alternating rounds after two warm-ups each; return their median seconds."""
    for argv in (a, b, a, b):
        run_once(argv, env, cwd)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        times[0].append(run_once(a, env, cwd))
        times[1].append(run_once(b, env, cwd))
    return statistics.median(times[0]), statistics.median(times[1])


def imported_modules(script: str, env: dict[str, str], cwd: str) -> set[str]:
    """Return the modules the cached query imports (from -X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", script, *QUERY], env=env, cwd=cwd,
                            capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}


def busy(report: dict | None) -> str:
    """Say how much of the machine other processes used while the rounds ran (from axq.measure)."""
    share = (report or {}).get("other_cpu_share")
    return "" if share is None else f" | others used {100 * share:.0f}% of the CPU meanwhile"


def main() -> None:
    """Build, pad, time, and print one line per collection size plus the verdict lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--sizes", default="10,10000")
    args = parser.parse_args()
    script, root = installed_script(), Path(tempfile.mkdtemp(prefix="axq-bench-"))
    collection = root / "wc"
    env, cwd = environment(collection), str(root)
    bare_cmd, cached_cmd = [sys.executable, "-c", "pass"], [script, *QUERY]
    print(f"query: axq {' '.join(QUERY)}")
    print(f"accuracy: {build_chain(script, env)}")
    results: dict[int, tuple[float, float]] = {}
    try:
        for size in sorted(map(int, args.sizes.split(","))):
            pad(collection, size, script, env)
            with measurement(f"bench_overhead {size} entries", log=print) as timed:
                bare, cached = interleaved(bare_cmd, cached_cmd, args.runs, env, cwd)
            results[size] = (bare, cached)
            print(f"{size:>6} entries: python -c pass {bare * 1000:5.1f} ms | cached query {cached * 1000:5.1f} ms"
                  f" | ratio {cached / bare:.2f} (budget <= {BUDGET}) | median of {args.runs}, interleaved"
                  f"{busy(timed.report)}")
        heavy = imported_modules(script, env, cwd) & HEAVY
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sizes = sorted(results)
    print(f"{sizes[-1]} vs {sizes[0]} entries: {results[sizes[-1]][1] / results[sizes[0]][1]:.2f}x the time")
    print("heavy modules on the cached path:", ", ".join(sorted(heavy)) or "none")


if __name__ == "__main__":
    main()
