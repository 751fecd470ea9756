"""Time a cached `axq byquery ... , get KEY` against `python -c pass`, at 10 to 10,000 entries.

Prints, for each collection size, the median wall time of the cached CLI query (a real
subprocess) and its ratio to a bare `python -c pass` measured in the same run. Targets:
ratio <= 2.0, and the 10,000-entry time within 1.2x of the 10-entry time. Also checks
that the cached path imports none of lark, torch, numpy or mlperf_loadgen.

    .venv/bin/python benchmarks/bench_overhead.py [--runs 21]
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

REPO = Path(__file__).resolve().parent.parent
QUERY = ["byquery", "number,value=0", ",", "get", "doubled"]
HEAVY = {"lark", "torch", "numpy", "mlperf_loadgen", "axq.query", "axq.resolve"}


def median_time(argv: list[str], runs: int, env: dict[str, str]) -> float:
    """Return the median wall time of running argv, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fill(collection: Path, size: int, env: dict[str, str]) -> None:
    """Build one real entry, then add size-1 more as copies with other values, reindexed."""
    subprocess.run([sys.executable, "-m", "axq", "--quiet", *QUERY], env=env, check=True, capture_output=True)
    (seed,) = [p for p in collection.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((seed / "manifest.json").read_text())
    for value in range(1, size):
        clone = collection / f"{seed.name}-copy{value}"
        clone.mkdir()
        manifest.update(identity=f"{value:064x}", name=clone.name, params={**manifest["params"], "value": value})
        (clone / "manifest.json").write_text(json.dumps(manifest))
        (clone / "number.txt").write_text(str(value))
    subprocess.run([sys.executable, "-m", "axq", "reindex"], env=env, check=True, capture_output=True)


def imported_modules(env: dict[str, str]) -> set[str]:
    """Return the modules the cached query imports (via -X importtime)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "axq", *QUERY], env=env,
                            capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--sizes", default="10,1000,10000")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="axq-bench-"))
    base_env = {**os.environ, "AXQ_ENTRIES": str(REPO / "tests" / "recipes")}
    results = {}
    try:
        for size in map(int, args.sizes.split(",")):
            env = {**base_env, "AXQ_WORK_COLLECTION": str(root / f"wc{size}")}
            fill(root / f"wc{size}", size, env)
            bare = median_time([sys.executable, "-c", "pass"], args.runs, env)
            cached = median_time([sys.executable, "-m", "axq", *QUERY], args.runs, env)
            results[size] = (bare, cached)
            print(f"{size:>6} entries: python -c pass {bare * 1000:6.1f} ms | cached query {cached * 1000:6.1f} ms"
                  f" | ratio {cached / bare:.2f} (target <= 2.0)")
        heavy = imported_modules(env) & HEAVY
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sizes = sorted(results)
    flat = results[sizes[-1]][1] / results[sizes[0]][1]
    print(f"{sizes[-1]} vs {sizes[0]} entries: {flat:.2f}x (target <= 1.2)")
    print("heavy modules imported on the cached path:", ", ".join(sorted(heavy)) or "none")


if __name__ == "__main__":
    main()
