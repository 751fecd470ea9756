"""Measure what a performance run costs beyond its LoadGen test: the first run of a SUT, then a second one.

The path users take: `axq byquery QUERY , get performance` as a command (the installed
CLI, timed from outside the process), in a private work collection where the data set
and model are built before any timing. Per configuration and round, two runs of the same
query, each with its entry removed first:

- cold: with no timings cached for the SUT (the collection's `.cache/loadgen_program`
  removed): the child times the model, aims Offline at MARGIN (2x) of that;
- warm: with the timings the cold run cached (it caches none when others disturbed it:
  then the row says so): nothing timed, Offline aimed at 1.25x the samples/s LoadGen
  measured in the cold run.

Columns: the command's wall time, the test's own duration (power_begin to power_end in
its detail log), beyond = wall - test, test / min_duration, target / achieved samples/s,
validity. Medians over the rounds. Run it alone: it is a measurement.

    .venv/bin/python benchmarks/bench_run_cost.py [--rounds 3] [--seconds 5] [--only digits]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_points import test_seconds  # noqa: E402

CONFIGS = {
    "digits": "loadgen_output,classified_digits,framework=pytorch",
    "resnet50": "loadgen_output,classified_imagenet,framework=onnxruntime,precision=fp32,batch_size=32",
}
MODES = ("cold", "warm")


def imagenet_settings(root: Path) -> str:
    """Write a generated ImageNet-like folder and random resnet50 weights; return their query settings."""
    sys.path.insert(0, str(REPO))
    from tests.imagenet_fixture import make_imagenet_dir, make_resnet50_weights

    folder = make_imagenet_dir(root / "val", 64)
    weights = make_resnet50_weights(root / "resnet50_random.pt")
    return f"imagenet_dir={folder},weights_path={weights},loadgen_dataset_size=64"


def run_once(query: str, collection: Path, mode: str, seconds: float) -> dict[str, Any]:
    """Run the query afresh as a command (its entry removed; in cold mode, the timings too); return its figures."""
    import axq

    for old in axq.list_entries(query):
        axq.remove(old.name)
    if mode == "cold":
        shutil.rmtree(collection / ".cache" / "loadgen_program", ignore_errors=True)
    cached = any((collection / ".cache" / "loadgen_program").glob("timings-*.json"))
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("axq")), "--quiet", "byquery", query, ",", "get",
                           "performance"], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{query}: {done.stderr.strip()}")
    entry = axq.byquery(query)
    results, test = entry.results, test_seconds(entry)
    target = float(results["calibrated"].get("target_qps") or 0)
    return {"wall": wall, "test": test, "beyond": wall - test, "stretch": test / seconds,
            "aim": target / results["performance"] if target else float("nan"), "valid": results["result_valid"],
            "contended": results.get("contended", False), "cached": cached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="each test's min_duration")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        collection = Path(tmp) / "wc"
        os.environ["AXQ_WORK_COLLECTION"] = str(collection)
        import axq
        from axq.progress import Reporter

        queries = {}
        for name in args.only or list(CONFIGS):
            extra = f",{imagenet_settings(Path(tmp))}" if name == "resnet50" else ""
            queries[name] = (f"{CONFIGS[name]}{extra},loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,"
                             f"loadgen_duration_s={args.seconds:g}")
            axq.byquery(queries[name].replace("PerformanceOnly", "AccuracyOnly") + ",loadgen_dataset_size=8"
                        if name == "digits" else queries[name], reporter=Reporter("quiet"))  # the chain, untimed
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for number in range(args.rounds):
            for name, query in queries.items():
                for mode in MODES:
                    row = run_once(query, collection, mode, args.seconds)
                    found.setdefault((name, mode), []).append(row)
                    print(f"round {number + 1}: {name:8} {mode}: wall {row['wall']:.2f} s, test {row['test']:.2f} s, "
                          f"{'VALID' if row['valid'] else 'INVALID'}{', contended' if row['contended'] else ''}"
                          f"{'' if row['cached'] or mode == 'cold' else ', no timings were cached'}",
                          flush=True)
    report(found, args)


def report(found: dict[tuple[str, str], list[dict[str, Any]]], args: Any) -> None:
    """Print the medians per configuration and mode as a table."""
    print(f"\n{args.rounds} rounds, Offline PerformanceOnly, min_duration {args.seconds:g} s, {os.cpu_count()} CPUs")
    print("| configuration | run | wall s | test s | beyond the test s | test / min_duration | target / achieved "
          "| valid | contended |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, mode), rows in found.items():
        def median(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        print(f"| {name} | {mode} | {median('wall'):.2f} | {median('test'):.2f} | {median('beyond'):.2f} | "
              f"{median('stretch'):.2f} | {median('aim'):.2f} | {sum(r['valid'] for r in rows)}/{len(rows)} | "
              f"{sum(r['contended'] for r in rows)}/{len(rows)} |")


if __name__ == "__main__":
    main()
