"""Measure object detection through axq's LoadGen harness next to the same model's bare loop, in one run.

The path users take: `loadgen_output,detected_digits,framework=...,loadgen_mode=PerformanceOnly,
loadgen_scenario=Offline` through the real kernel (the digits detection set and the
small detector trained by their recipes, cached in a private work collection; converted
models built once before the rounds), the real LoadGen child and SUT. With
`harness_baseline_s` set, the LoadGen process itself times the backend's bare loop (its
predict on shuffled batches of the same size, no LoadGen, no responses) right before and
right after the test, on the same thread, and the run records their mean: LoadGen / bare
is what the harness costs a detector, whose responses are variable-size boxes encoded per
batch (target >= 0.95). Rounds are interleaved, each run removed first; medians shown.
Run it alone: it is a measurement.

    .venv/bin/python benchmarks/bench_detection.py [--rounds 3] [--seconds 5] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

FRAMEWORKS = ("pytorch", "onnxrt", "openvino")


def measured(query: str) -> dict:
    """Run one query afresh (its old run removed); return its results."""
    import axq
    from axq.progress import Reporter

    for old in axq.list_entries(query):
        axq.remove(old.name)
    return axq.byquery(query, reporter=Reporter("quiet")).results


def main() -> None:
    """Build the chain once, run the interleaved rounds, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    found: dict[str, list[dict]] = {name: [] for name in FRAMEWORKS}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AXQ_WORK_COLLECTION"] = str(Path(tmp) / "wc")
        for number in range(args.rounds):
            for framework in FRAMEWORKS:
                result = measured(f"loadgen_output,detected_digits,framework={framework},batch_size={args.batch_size},"
                                  f"loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,"
                                  f"loadgen_duration_s={args.seconds},harness_baseline_s={args.seconds}")
                found[framework].append(result)
                print(f"round {number + 1}: {framework:8s} {result['performance']:8.1f}/s "
                      f"(bare {result['sut']['bare_samples_per_s']:.1f}/s)", flush=True)
    print(f"\ndigits detector (64x64 canvases), batch {args.batch_size}, Offline, {args.rounds} interleaved rounds, "
          f"{args.seconds:g} s per test and per bare loop, {os.cpu_count()} CPUs")
    print("| framework | axq through LoadGen (samples/s) | bare loop (samples/s) | LoadGen / bare | valid |")
    print("|---|---|---|---|---|")
    for framework, results in found.items():
        axq_rate = statistics.median(r["performance"] for r in results)
        bare = statistics.median(r["sut"]["bare_samples_per_s"] for r in results)
        ratio = statistics.median(r["sut"]["harness_efficiency"] for r in results)
        flags = "yes" if all(r["result_valid"] for r in results) else "NO"
        contended = " (contended)" if any(r.get("contended") for r in results) else ""
        print(f"| {framework}{contended} | {axq_rate:.1f} | {bare:.1f} | {ratio:.3f} | {flags} |")


if __name__ == "__main__":
    main()
