"""Measure every backend x precision: axq's Offline samples/s through LoadGen next to its bare loop.

ResNet50 shapes (3 x 224 x 224, torchvision's resnet50 with random weights, as a user's
`weights_path=` file), batch 32, on a generated ImageNet-like folder (JPEGs and val_map.txt,
a second one to calibrate int8 on). Each configuration is the user's query,
`loadgen_output,classified_imagenet,framework=...,precision=...,loadgen_mode=PerformanceOnly`,
through the real kernel, the real LoadGen child and SUT; its converted or quantized model is
built once (cached) before the rounds. With `harness_baseline_s` set, the LoadGen process
itself times the same runtime's bare loop (the backend's predict on shuffled batches, no
LoadGen) right before and right after the test, on the same thread, and the run records
their mean: the ratio LoadGen / bare is the harness's cost for that runtime (target >= 0.95).

Rounds are interleaved (every configuration once per round, each run removed first so it
is measured afresh); the table shows medians. Random weights: the accuracy check of the
int8 models is meaningless here, so `accuracy_target=0`. Run it alone: it is a measurement.

    .venv/bin/python benchmarks/bench_backends.py [--rounds 3] [--seconds 5] [--only openvino]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = "loadgen_output,classified_imagenet,loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,batch_size=32"
CONFIGS = [  # (label, query settings)
    ("pytorch fp32 NCHW", "framework=pytorch,precision=fp32,memory_format=contiguous"),
    ("pytorch fp32", "framework=pytorch,precision=fp32"),
    ("pytorch bf16", "framework=pytorch,precision=bf16"),
    ("pytorch bf16 compile", "framework=pytorch,precision=bf16,compile=true"),
    ("pytorch int8", "framework=pytorch,precision=int8"),
    ("onnxruntime fp32", "framework=onnxruntime,precision=fp32"),
    ("onnxruntime int8", "framework=onnxruntime,precision=int8"),
    ("openvino fp32", "framework=openvino,precision=fp32"),
    ("openvino bf16", "framework=openvino,precision=bf16"),
    ("openvino int8", "framework=openvino,precision=int8"),
    ("openvino int8 2 instances", "framework=openvino,precision=int8,num_instances=2"),
    ("openvino int8 throughput", "framework=openvino,precision=int8,ov_hint=THROUGHPUT"),
    ("onnxruntime int8 2 instances", "framework=onnxruntime,precision=int8,num_instances=2"),
]
REFERENCE, NCHW = "pytorch fp32", "pytorch fp32 NCHW"


def make_inputs(root: Path, images: int) -> dict[str, str]:
    """Write the ImageNet-like folders and random resnet50 weights; return their query settings."""
    sys.path.insert(0, str(REPO))
    from tests.imagenet_fixture import make_imagenet_dir, make_resnet50_weights

    scored = make_imagenet_dir(root / "val", images)
    calibration = make_imagenet_dir(root / "calibration", 32)
    weights = make_resnet50_weights(root / "resnet50_random.pt")
    return {"imagenet_dir": str(scored), "calibration_dir": str(calibration), "weights_path": str(weights),
            "loadgen_dataset_size": str(images), "calibration_size": "32", "accuracy_target": "0"}


def query(settings: str, inputs: dict[str, str], args: Any) -> str:
    """Return the full query of one configuration."""
    common = ",".join(f"{k}={v}" for k, v in inputs.items())
    return (f"{BASE},{settings},{common},loadgen_duration_s={args.seconds},harness_baseline_s={args.seconds},"
            f"loadgen_timeout_s=1200")


def measured(full_query: str) -> dict:
    """Run one configuration afresh (its old run removed); return its results."""
    import axq
    from axq.progress import Reporter

    for old in axq.list_entries(full_query):
        axq.remove(old.name)
    return axq.byquery(full_query, reporter=Reporter("quiet")).results


def rounds(configs: list[tuple[str, str]], inputs: dict[str, str], args: Any) -> dict[str, list[dict]]:
    """Run every configuration once per round, interleaved; return each one's results by label."""
    found: dict[str, list[dict]] = {label: [] for label, _ in configs}
    for number in range(args.rounds):
        for label, settings in configs:
            result = measured(query(settings, inputs, args))
            found[label].append(result)
            print(f"round {number + 1}: {label:22s} {result['performance']:8.1f}/s "
                  f"(bare {result['sut']['bare_samples_per_s']:.1f}/s)", flush=True)
    return found


def row(label: str, results: list[dict]) -> dict[str, Any]:
    """Return the medians of one configuration's rounds, and what its backend said it ran."""
    sut = [r["sut"] for r in results]
    return {"label": label, "axq": statistics.median(r["performance"] for r in results),
            "bare": statistics.median(s["bare_samples_per_s"] for s in sut),
            "ratio": statistics.median(s["harness_efficiency"] for s in sut),
            "valid": all(r["result_valid"] for r in results), "runs": sut[-1]["backend"]["precision"],
            "contended": any(r.get("contended") for r in results)}


def report(rows: list[dict[str, Any]], args: Any) -> None:
    """Print the table (medians), the ratios to PyTorch fp32, and the best configuration."""
    print(f"\nResNet50 shapes, random weights, batch 32, Offline, {args.rounds} interleaved rounds, "
          f"{args.seconds:g} s per test and per bare loop, {os.cpu_count()} CPUs")
    print("| configuration | runs | axq through LoadGen (samples/s) | bare loop (samples/s) | LoadGen / bare "
          "| vs pytorch fp32 | vs fp32 NCHW |")
    print("|---|---|---|---|---|---|---|")
    base = {r["label"]: r["axq"] for r in rows}
    for r in rows:
        versus = [f"{r['axq'] / base[name]:.1f}x" if name in base else "-" for name in (REFERENCE, NCHW)]
        flags = ("" if r["valid"] else " INVALID") + (" contended" if r["contended"] else "")
        print(f"| {r['label']}{flags} | {r['runs']} | {r['axq']:.1f} | {r['bare']:.1f} | {r['ratio']:.3f} "
              f"| {versus[0]} | {versus[1]} |")
    best = max(rows, key=lambda r: r["axq"])
    print(f"\nbest through axq: {best['label']} at {best['axq']:.1f} samples/s; "
          f"lowest LoadGen / bare: {min(r['ratio'] for r in rows):.3f} (target >= 0.95)")


def main() -> None:
    """Build the inputs and models, run the interleaved rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--images", type=int, default=64, help="ImageNet-like images held by the QSL")
    parser.add_argument("--only", default="", help="run only configurations whose label contains this")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if args.only in c[0]]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AXQ_WORK_COLLECTION"] = str(Path(tmp) / "wc")
        inputs = make_inputs(Path(tmp), args.images)
        found = rounds(configs, inputs, args)
        report([row(label, found[label]) for label, _ in configs], args)


if __name__ == "__main__":
    main()
