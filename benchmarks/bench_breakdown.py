"""Measure what the harness adds to a LoadGen run: the latency breakdown of real digits runs.

The path users take: `axq.byquery` of digits PerformanceOnly runs (the real LoadGen, the
real SUT), each removed first (`axq.remove`) so that it is measured afresh, in a temporary
work collection (the digits chain built once, before any timing). Configurations, one
round each in turn per round (rounds interleave them, so drift hits all alike):

- Offline with one instance at batch_size 16, 32 (the default), 64 and 256: the digits CNN
  infers a sample 3x faster at 256 than at 32, while the harness's cost per sample stays,
  so the share grows with the batch;
- the same at batch 32 with sut_completion=python: LoadGen's Python binding, a list of
  response objects, against its C entry point on an array (axq_mlperf.completion);
- two instances as threads and as processes (instance_kind=process), at batch 32 and 256:
  which is faster for PyTorch eager on this small CNN (for process instances, "inference"
  is the round trip to the instance's process);
- SingleStream with one instance, through the C entry point and through the binding.

Per configuration, medians over the rounds of the `latency_breakdown` getter: the mean
inference time per batch, the harness's time per batch (`harness_us_per_batch`: dispatch
plus response, the instance not inferring), its share of the instances' active time
(`harness_share`) and how that splits into axq's own part and LoadGen's QuerySamplesComplete
call, the SUT's mean end to end against LoadGen's own mean latency, and the
headline figure. Targets (issue 11): the harness at most 2% in Offline and at most 100 us a
query in SingleStream with the small digits CNN.

    .venv/bin/python benchmarks/bench_breakdown.py [--rounds 5] [--seconds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

BASE = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=PerformanceOnly"
OFFLINE, SINGLE = "loadgen_scenario=Offline", "loadgen_scenario=SingleStream"
CONFIGS = {
    "Offline, 1 instance, batch 16": f"{OFFLINE},num_instances=1,batch_size=16",
    "Offline, 1 instance, batch 32": f"{OFFLINE},num_instances=1,batch_size=32",
    "Offline, 1 instance, batch 32, Python binding": f"{OFFLINE},num_instances=1,batch_size=32,sut_completion=python",
    "Offline, 1 instance, batch 64": f"{OFFLINE},num_instances=1,batch_size=64",
    "Offline, 1 instance, batch 256": f"{OFFLINE},num_instances=1,batch_size=256",
    "Offline, 2 instances, batch 32": f"{OFFLINE},num_instances=2,batch_size=32",
    "Offline, 2 process instances, batch 32": f"{OFFLINE},num_instances=2,instance_kind=process,batch_size=32",
    "Offline, 2 instances, batch 256": f"{OFFLINE},num_instances=2,batch_size=256",
    "Offline, 2 process instances, batch 256": f"{OFFLINE},num_instances=2,instance_kind=process,batch_size=256",
    "SingleStream, 1 instance": f"{SINGLE},num_instances=1",
    "SingleStream, 1 instance, Python binding": f"{SINGLE},num_instances=1,sut_completion=python",
}


def measure(query: str) -> dict[str, Any]:
    """Build the run afresh; return its breakdown, headline and validity."""
    import axq
    from axq.progress import Reporter

    quiet = Reporter("quiet")
    for old in axq.list_entries(query):
        axq.remove(old.name)
    entry = axq.byquery(query, reporter=quiet)
    return {"breakdown": entry.get("latency_breakdown"), "performance": entry.results["performance"],
            "unit": entry.results["unit"], "valid": entry.results["result_valid"],
            "contended": entry.results.get("contended", False)}


def row(name: str, runs: list[dict[str, Any]]) -> str:
    """Return one table row: medians over the runs of a configuration."""
    def median(pick: Any) -> float:
        return statistics.median(pick(r) for r in runs)

    inference = median(lambda r: r["breakdown"]["inference_ms"]["mean"] * 1e3)
    harness = median(lambda r: r["breakdown"]["harness_us_per_batch"])
    share = median(lambda r: r["breakdown"]["harness_share"])
    own = median(lambda r: r["breakdown"]["harness_own_share"])
    call = median(lambda r: r["breakdown"]["loadgen_call_share"])
    ours = median(lambda r: r["breakdown"]["end_to_end_ms"]["mean"])
    loadgen = median(lambda r: r["breakdown"]["loadgen_mean_ms"])
    figure = median(lambda r: r["performance"])
    flags = f"{sum(r['valid'] for r in runs)}/{len(runs)} valid, {sum(r['contended'] for r in runs)} contended"
    return (f"| {name} | {inference:.1f} | {harness:.1f} | {100 * share:.2f}% | {100 * own:.2f}% | "
            f"{100 * call:.2f}% | {ours:.4g} | {loadgen:.4g} | "
            f"{figure:.6g} {runs[0]['unit']} | {flags} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="loadgen_duration_s of each run")
    args = parser.parse_args()
    import os

    with tempfile.TemporaryDirectory(prefix="axq-bench-breakdown-") as root:
        os.environ["AXQ_WORK_COLLECTION"] = str(Path(root) / "wc")
        queries = {name: f"{BASE},{settings},loadgen_duration_s={args.seconds:g}" for name, settings in CONFIGS.items()}
        measure(next(iter(queries.values())))  # the digits chain, built before any timing
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in queries}
        for number in range(args.rounds):
            for name, query in queries.items():
                found[name].append(measure(query))
            print(f"round {number + 1}/{args.rounds} done", flush=True)
    print(f"\nmedians of {args.rounds} rounds, {args.seconds:g} s runs, digits small CNN\n")
    print("| configuration | inference us/batch | harness us/batch | harness share | of it axq's own | "
          "of it LoadGen's call | SUT end to end ms | LoadGen mean ms | headline | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in found.items():
        print(row(name, runs))


if __name__ == "__main__":
    main()
