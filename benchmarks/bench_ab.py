"""Compare two commits of axq on the same machine in one run: ResNet50 int8 OpenVINO Offline, digits SingleStream.

The classification figures a change must not make worse (the task seam: >= 0.97x before),
measured as users get them: each side is a checkout of its commit (this one, and
`--before REV` in a temporary git worktree), runs the real query through its own kernel,
recipes, LoadGen child and SUT, in a work collection of its own (the models built once per
side, before the rounds). Rounds are interleaved (every configuration on both sides once
per round, the side that goes first alternating; each run removed first, so it is measured
afresh), and the table shows medians and after / before:

- ResNet50 shapes (torchvision's resnet50, random weights, a generated ImageNet-like
  folder, as benchmarks/bench_backends.py), OpenVINO int8, batch 32, Offline: samples/s,
  and the LoadGen / bare-loop ratio the run measures in its own process;
- the digits CNN (its recipe), PyTorch, SingleStream: the 90th percentile latency, the
  harness's cost per query for a model that infers a sample in tens of microseconds.

    .venv/bin/python benchmarks/bench_ab.py --before 775c794 [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESNET = ("resnet50 openvino int8 Offline", "loadgen_output,classified_imagenet,framework=openvino,precision=int8,"
          "loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,batch_size=32")
DIGITS = ("digits pytorch SingleStream", "loadgen_output,classified_digits,framework=pytorch,"
          "loadgen_mode=PerformanceOnly,loadgen_scenario=SingleStream")


def worker(query: str) -> None:
    """Run one query afresh in this checkout (its old run removed); print the figures as JSON."""
    import axq
    from axq.progress import Reporter

    for old in axq.list_entries(query):
        axq.remove(old.name)
    results = axq.byquery(query, reporter=Reporter("quiet")).results
    sut, breakdown = results["sut"], results.get("latency_breakdown", {})
    print(json.dumps({"performance": results["performance"], "valid": results["result_valid"],
                      "contended": results.get("contended", False),
                      "efficiency": sut.get("harness_efficiency"), "breakdown": breakdown}))


def run_side(checkout: Path, collection: Path, query: str) -> dict[str, Any]:
    """Run the query in a checkout's own interpreter path and work collection; return its figures."""
    env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{checkout / 'entries' / 'lib'}",
           "AXQ_WORK_COLLECTION": str(collection)}
    env.pop("AXQ_ENTRIES", None)
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_ab.py"), "--worker", query],
                          cwd=checkout, env=env, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: {query} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def imagenet_inputs(root: Path) -> str:
    """Write the ImageNet-like folders and random resnet50 weights; return their query settings."""
    sys.path.insert(0, str(REPO))
    from tests.imagenet_fixture import make_imagenet_dir, make_resnet50_weights

    scored, calibration = make_imagenet_dir(root / "val", 64), make_imagenet_dir(root / "calibration", 32)
    weights = make_resnet50_weights(root / "resnet50_random.pt")
    return (f"imagenet_dir={scored},calibration_dir={calibration},weights_path={weights},loadgen_dataset_size=64,"
            f"calibration_size=32,accuracy_target=0")


def main() -> None:
    """Check out the before side, run the interleaved rounds, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="the commit to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", default="", help="run only configurations whose label contains this")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    if not args.before:
        parser.error("--before REV is needed")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        before = root / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before],
                       check=True, capture_output=True)
        try:
            compare(args, root, {"before": before, "after": REPO})
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)


def compare(args: Any, root: Path, sides: dict[str, Path]) -> None:
    """Run every configuration on both sides once per round; print the table."""
    inputs = imagenet_inputs(root / "inputs") if args.only in RESNET[0] else ""
    configs = [(RESNET[0], f"{RESNET[1]},{inputs},loadgen_duration_s={args.seconds},harness_baseline_s={args.seconds}"),
               (DIGITS[0], f"{DIGITS[1]},loadgen_duration_s={args.seconds}")]
    configs = [config for config in configs if args.only in config[0]]
    found: dict[tuple[str, str], list[dict]] = {}
    for number in range(args.rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for label, query in configs:
            for side in order:
                figures = run_side(sides[side], root / f"wc-{side}", query)
                found.setdefault((label, side), []).append(figures)
                print(f"round {number + 1}: {label:32s} {side:6s} {figures['performance']}"
                      f"{'' if figures['valid'] else ' INVALID'}{' contended' if figures['contended'] else ''}",
                      flush=True)
    report(found, configs, args)


def report(found: dict[tuple[str, str], list[dict]], configs: list[tuple[str, str]], args: Any) -> None:
    """Print each configuration's medians on both sides and after / before (higher is better)."""
    print(f"\n{args.rounds} interleaved rounds, {args.seconds:g} s tests, {os.cpu_count()} CPUs, "
          f"before = {args.before}")
    print("| configuration | figure | before | after | after vs before |")
    print("|---|---|---|---|---|")
    for label, _ in configs:
        before = statistics.median(f["performance"] for f in found[(label, "before")])
        after = statistics.median(f["performance"] for f in found[(label, "after")])
        if "Offline" in label:
            print(f"| {label} | samples/s | {before:.1f} | {after:.1f} | {after / before:.3f}x |")
            eff = [statistics.median(f["efficiency"] for f in found[(label, s)]) for s in ("before", "after")]
            print(f"| {label} | LoadGen / bare | {eff[0]:.3f} | {eff[1]:.3f} | {eff[1] / eff[0]:.3f}x |")
        else:
            print(f"| {label} | p90 latency (us) | {before / 1e3:.1f} | {after / 1e3:.1f} | {before / after:.3f}x |")


if __name__ == "__main__":
    main()
