"""Count how often a short Server run is VALID: the README's example built afresh N times.

The real query through the real CLI (`python -m axq`, as a user types it), in one work
collection whose digits chain is built before the first run: each round removes the run's
entry (`axq rm NAME`, the name `axq plan Q` gives), builds it again (`, get result_valid`, which holds the
measurement lock for its test) and reads what LoadGen said from the entry: VALID or not,
queries, queries over the latency bound, the bound, and whether other processes used the
machine meanwhile (contended). A feasible target should be VALID in at least 19 of 20.

    .venv/bin/python benchmarks/bench_validity.py [--runs 20] [--query Q] [--work-collection DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

README_SERVER = ("loadgen_output,classified_digits,framework=pytorch,loadgen_mode=PerformanceOnly,"
                 "loadgen_scenario=Server,loadgen_target_qps=500")


def axq(work_collection: str, *words: str) -> subprocess.CompletedProcess:
    """Run `python -m axq --quiet --work-collection WC words...` and return what it did."""
    command = [sys.executable, "-m", "axq", "--quiet", "--work-collection", work_collection, *words]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def one_run(work_collection: str, query: str) -> dict[str, Any]:
    """Remove the query's entry, build it again, and return what its run recorded."""
    import axq as api

    step = api.plan(query, work_collection=work_collection)[0]  # the run itself, exactly (no loose match)
    if step.cached:
        removed = axq(work_collection, "rm", step.node.name)
        if removed.returncode != 0:
            raise SystemExit(f"could not remove the run before building it again: {removed.stderr.strip()}")
    started = time.monotonic()
    done = axq(work_collection, "byquery", query, ",", "get", "result_valid")
    wall = time.monotonic() - started
    if done.stdout.strip() not in ("true", "false"):
        raise SystemExit(f"the run failed (exit {done.returncode}): {done.stderr.strip()}")

    results = api.byquery(query, work_collection=work_collection).results
    summary = results.get("summary", {})
    return {"valid": done.stdout.strip() == "true", "exit": done.returncode, "wall_s": wall,
            "queries": results.get("query_count"), "late": results.get("overlatency_queries"),
            "bound_ms": summary.get("target_latency (ns)", 0) / 1e6, "p99_ms": summary.get(
                "99.00 percentile latency (ns)", 0) / 1e6, "contended": results.get("contended"),
            "others": results.get("other_cpu_share"), "reason": results.get("invalid_reason", "")}


def show(index: int, run: dict[str, Any]) -> None:
    """Print one run's line."""
    print(f"run {index:2d}: {'VALID  ' if run['valid'] else 'INVALID'} exit {run['exit']}  {run['queries']} queries, "
          f"{run['late']} over the {run['bound_ms']:g} ms bound (p99 {run['p99_ms']:.2f} ms), "
          f"other processes {100 * (run['others'] or 0):.0f}%{' CONTENDED' if run['contended'] else ''}, "
          f"{run['wall_s']:.1f} s{'  ' + run['reason'] if run['reason'] else ''}", flush=True)


def main() -> None:
    """Build the query's chain once, then run the query afresh --runs times; print the VALID count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--query", default=README_SERVER)
    parser.add_argument("--work-collection", default=None, help="default: a fresh temporary one")
    args = parser.parse_args()
    work_collection = args.work_collection or tempfile.mkdtemp(prefix="axq-bench-validity-")
    os.environ.pop("AXQ_WORK_COLLECTION", None)
    print(f"query: {args.query}\nwork collection: {work_collection}", flush=True)
    runs = []
    for index in range(1, args.runs + 1):
        runs.append(one_run(work_collection, args.query))
        show(index, runs[-1])
    valid = sum(run["valid"] for run in runs)
    contended = sum(bool(run["contended"]) for run in runs)
    late = sorted(run["late"] for run in runs if run["late"] is not None)
    print(f"VALID {valid} of {len(runs)} (target: at least {len(runs) - len(runs) // 20}); "
          f"{contended} contended; queries over the bound per run: {late}")
    if Path(work_collection).name.startswith("axq-bench-validity-") and not args.work_collection:
        print(f"(the work collection stays for a rerun: --work-collection {work_collection})")


if __name__ == "__main__":
    main()
