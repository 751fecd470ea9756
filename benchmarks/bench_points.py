"""Measure what a short sweep point costs beyond its test: cold LoadGen children vs warm ones.

The path users take: `axq.sweep(...)` (what `axq sweep` runs) over digits points with 1 s
LoadGen tests (PerformanceOnly, loadgen_duration_s=1), an Offline sweep over batch_size
and a Server sweep over loadgen_target_qps, in a temporary work collection (the digits
chain built once, before any timing). Each round runs both sweeps cold (AXQ_WARM_START=0:
a fresh `python harness.py` per point) and warm (forked from the zygote, axq.zygote), in
alternating order, every point removed first so that it is built again. Per point:

- wall: from the previous point's row to this one's (sweep.on_row), as a user waits;
- test: the LoadGen test's own duration (power_begin to power_end in its detail log);
- waited: how long it waited for the machine's measurement lock (another measurement ran);
- fixed: wall minus test and waited, the cost the issue bounds (target: at most 1 s);
- samples/s: the run's headline figure, which warm starts must leave unchanged.

Medians over the rounds, cold next to warm, per point and over all points. The first warm
point of the process also starts the zygote (its imports): it is printed apart and left
out of the medians; the rounds reuse that zygote as the points of one `axq sweep` or
`axq explore` do.

    .venv/bin/python benchmarks/bench_points.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

BASE = "loadgen_output,classified_digits,loadgen_mode=PerformanceOnly,loadgen_duration_s=1,num_threads=1"
SWEEPS = {
    "Offline": f"{BASE},loadgen_scenario=Offline,batch_size:=8:16:32",
    "Server": f"{BASE},loadgen_scenario=Server,batch_size=16,loadgen_target_latency=50,"
              "loadgen_target_qps:=500:1000:2000",
}
MODES = {"cold": "0", "warm": "1"}
COLUMNS = f"{'wall s':>7} {'test s':>7} {'waited':>7} {'fixed s':>8} {'samples/s':>10}  valid"


def test_seconds(entry: Any) -> float:
    """Return how long LoadGen says the performance test ran (power_begin to power_end)."""
    from axq.entry import use_libraries

    use_libraries()
    from axq_mlperf import logs

    detail = logs.read_detail(entry.path)
    begin, end = (datetime.strptime(detail[k], "%m-%d-%Y %H:%M:%S.%f") for k in ("power_begin", "power_end"))
    return (end - begin).total_seconds()


def run_sweep(query: str, mode: str) -> list[dict[str, Any]]:
    """Run one sweep afresh in a mode; return per point: wall, test, waited, fixed, samples/s, valid."""
    import axq
    from axq.progress import Reporter

    os.environ["AXQ_WARM_START"] = MODES[mode]
    for entry in axq.list_entries("loadgen_output,loadgen_mode=PerformanceOnly"):
        axq.remove(entry.name)
    ends: list[float] = []
    started = time.monotonic()
    rows = axq.sweep(query, "performance", reporter=Reporter("quiet"), on_row=lambda row: ends.append(time.monotonic()))
    points = []
    for row, end, begin in zip(rows, ends, [started, *ends[:-1]], strict=True):
        assert row["error"] is None, row["error"]
        entry = axq.byname(row["entry"])
        test, waited = test_seconds(entry), entry.manifest["measurement"]["waited_s"]
        points.append({"wall": end - begin, "test": test, "waited": waited, "fixed": end - begin - test - waited,
                       "samples_per_s": row["performance"], "valid": row["valid"]})
    return points


def build_chain() -> None:
    """Build the digits data set, its preprocessing and the model (not timed)."""
    import axq
    from axq.progress import Reporter

    axq.byquery("loadgen_output,classified_digits,loadgen_mode=AccuracyOnly", reporter=Reporter("quiet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AXQ_WORK_COLLECTION"] = str(Path(tmp) / "wc")
        build_chain()
        results: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
        for number in range(args.rounds):
            modes = list(MODES) if number % 2 == 0 else list(reversed(MODES))
            for mode in modes:
                for scenario, query in SWEEPS.items():
                    points = run_sweep(query, mode)
                    if mode == "warm" and not any(k[1] == "warm" for k in results):
                        points[0]["zygote_start"] = True
                    results.setdefault((scenario, mode), []).append(points)
            print(f"round {number + 1}/{args.rounds} done", flush=True)
    report(results)


def report(results: dict[tuple[str, str], list[list[dict[str, Any]]]]) -> None:
    """Print per scenario and point, cold next to warm: medians of wall, test, fixed, samples/s."""
    print(f"\n{'scenario':9} {'point':5} {'mode':5} {COLUMNS}")
    for scenario in SWEEPS:
        for mode in MODES:
            sweeps = results[(scenario, mode)]
            for index in range(len(sweeps[0])):
                print(f"{scenario:9} {index + 1:<5} {mode:5} " + line([sweep[index] for sweep in sweeps]))
    print(f"\n{'all points':15} {'mode':5} {COLUMNS}")
    for scenario in SWEEPS:
        for mode in MODES:
            print(f"{scenario:15} {mode:5} " + line([p for sweep in results[(scenario, mode)] for p in sweep]))
    first = [p for sweeps in results.values() for sweep in sweeps for p in sweep if p.get("zygote_start")]
    for point in first:
        print(f"\nthe first warm point of the process, which starts the zygote (left out above): wall "
              f"{point['wall']:.2f} s, test {point['test']:.2f} s, fixed {point['fixed']:.2f} s")


def line(points: list[dict[str, Any]]) -> str:
    """Return the medians of wall, test, waited, fixed and samples/s (the zygote's start left out), and validity."""
    kept = [p for p in points if not p.get("zygote_start")]
    if not kept:
        return "(only the zygote's start: see below)"
    med = {k: statistics.median(p[k] for p in kept) for k in ("wall", "test", "waited", "fixed", "samples_per_s")}
    return (f"{med['wall']:7.2f} {med['test']:7.2f} {med['waited']:7.2f} {med['fixed']:8.2f} "
            f"{med['samples_per_s']:10.1f}  {all(p['valid'] for p in points)}")


if __name__ == "__main__":
    main()
