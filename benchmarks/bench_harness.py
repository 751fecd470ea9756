"""Measure the LoadGen harness's overhead: Offline through LoadGen vs a bare loop.

Synthetic data and model (no data set or training needed): 2,048 random 1 x 28 x 28
images and a seeded, untrained small CNN of the Fashion-MNIST model's shape. In one run:

1. the same model through `entries/loadgen_program` (a real LoadGen Offline
   PerformanceOnly test in its own process), with `harness_baseline_s` set so that the
   test process also times the bare model (the same shuffled batches through the same
   predict(), no LoadGen) right before and right after the test, on the same thread, and
   takes their mean (a first loop warms the process up: a fresh process runs slower for
   its first seconds);
2. the harness with a model that returns at once, to show the harness's own ceiling.

Prints each rate and the ratio harness / bare (target >= 0.95). The baseline is taken in
the test's own process because two processes running the same loop differ by tens of
percent on this shared machine (the parent's own bare loop is printed to show that).
torch runs one thread by default here (--threads) so that a shared machine gives steady
numbers.

    .venv/bin/python benchmarks/bench_harness.py [--batch-size 64] [--seconds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "entries" / "loadgen_program"
SAMPLES = 2048

DATA_CODE = '''
def load_arrays(entry, mmap=True):
    import numpy as np
    return np.load(entry.path / "images.npy", mmap_mode="r"), np.load(entry.path / "labels.npy")
'''
MODEL_CODE = '''
import torch
from torch import nn


class Instant(nn.Module):
    """Return fixed logits at once, whatever the input."""

    def forward(self, x):
        return torch.zeros(x.shape[0], 10)


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 10))


def load_model(entry, device="cpu"):
    model = Instant() if entry.params.get("instant") else make_model()
    return model.eval().to(device)
'''


class Dep:
    """A stand-in dependency entry: a directory with code.py, params and call()."""

    def __init__(self, path: Path, params: dict | None = None) -> None:
        self.path, self.params, self.results = path, params or {}, {}

    def code(self) -> Any:
        from axq.entry import load_code

        return load_code(str(self.path / "code.py"))

    def call(self, function: str, *args: Any) -> Any:
        return getattr(self.code(), function)(self, *args)


class Context:
    """A build context that keeps the log quiet."""

    def __init__(self, path: Path, params: dict, deps: dict) -> None:
        self.path, self.params, self.deps = path, params, deps

    def log(self, message: str) -> None:
        pass


def make_deps(root: Path) -> tuple[Path, Path]:
    """Write the synthetic data set and model recipe under root."""
    data, model = root / "data", root / "model"
    data.mkdir(), model.mkdir()
    rng = np.random.default_rng(0)
    np.save(data / "images.npy", rng.standard_normal((SAMPLES, 1, 28, 28), dtype=np.float32))
    np.save(data / "labels.npy", rng.integers(0, 10, SAMPLES, dtype=np.int64))
    (data / "code.py").write_text(DATA_CODE)
    (model / "code.py").write_text(MODEL_CODE)
    return data, model


def bare_rate(deps: tuple[Path, Path], batch: int, seconds: float) -> float:
    """Return samples/s of the model in a plain loop over batches, on a worker thread."""
    images = torch.from_numpy(np.load(deps[0] / "images.npy"))
    model = Dep(deps[1]).call("load_model", "cpu")
    found: list[float] = []

    def loop() -> None:
        with torch.inference_mode():
            for start in range(0, 4 * batch, batch):
                model(images[start:start + batch]).argmax(1).numpy()
            done, began = 0, time.perf_counter()
            while time.perf_counter() - began < seconds:
                start = (done % SAMPLES) // batch * batch
                model(images[start:start + batch]).argmax(1).numpy()
                done += batch
            found.append(done / (time.perf_counter() - began))

    worker = threading.Thread(target=loop)
    worker.start()
    worker.join()
    return found[0]


def harness_run(deps: tuple[Path, Path], out: Path, model_params: dict, **params: Any) -> dict:
    """Run one LoadGen Offline PerformanceOnly test through the recipe; return its results."""
    from axq.entry import load_code

    recipe = json.loads((RECIPE / "recipe.json").read_text())
    resolved = {**recipe["defaults"], **recipe["producers"][1]["defaults"],
                **recipe["producers"][1]["params"], "loadgen_mode": "PerformanceOnly", **params}
    out.mkdir()
    context = Context(out, resolved, {"preprocessed": Dep(deps[0]), "model": Dep(deps[1], model_params)})
    return load_code(str(RECIPE / "code.py")).build(context)


def main() -> None:
    """Measure and print the harness against the bare model (same process), and its ceiling."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO))
    common = {"batch_size": args.batch_size, "num_threads": args.threads, "loadgen_duration_s": args.seconds}
    with tempfile.TemporaryDirectory() as tmp:
        deps = make_deps(Path(tmp))
        cross = bare_rate(deps, args.batch_size, args.seconds)
        runs = [harness_run(deps, Path(tmp) / f"cnn{i}", {}, loadgen_target_qps=round(cross, 1),
                            harness_baseline_s=args.seconds, **common) for i in range(args.repeats)]
        instant = harness_run(deps, Path(tmp) / "instant", {"instant": True}, **common)
    report(args, runs, instant, cross)


def report(args: Any, runs: list[dict], instant: dict, cross: float) -> None:
    """Print each run and the medians."""
    print(f"synthetic small CNN, 1x28x28 inputs, batch {args.batch_size}, {args.threads} torch thread(s), "
          f"{args.seconds:g} s per measurement")
    for run in runs:
        sut = run["sut"]
        print(f"  bare {sut['bare_samples_per_s']:8.1f}/s | harness {run['performance']:8.1f}/s "
              f"({'VALID' if run['valid'] else 'INVALID'}) | ratio {sut['harness_efficiency']:.3f} "
              f"| SUT busy {100 * sut['sut_busy_s'] / sut['test_wall_s']:.1f}% of the test "
              f"| bare warm-up, before, after: {', '.join(f'{b:.0f}' for b in sut['bare_runs_samples_per_s'])}")
    ratios = sorted(r["sut"]["harness_efficiency"] for r in runs)
    ratio = statistics.median(ratios)
    busy = statistics.median(r["sut"]["sut_busy_s"] / r["sut"]["test_wall_s"] for r in runs)
    print(f"median ratio harness / bare (same process): {ratio:.3f}  (target >= 0.95; "
          f"range {ratios[0]:.3f}..{ratios[-1]:.3f})")
    print(f"median SUT busy during the test:            {100 * busy:.1f}%")
    print(f"harness with an instant model:              {instant['performance']:.0f} samples/s "
          f"({'VALID' if instant['valid'] else 'INVALID'})")
    print(f"(the same bare loop in the parent process:  {cross:.1f}/s; processes differ, so not the baseline)")


if __name__ == "__main__":
    main()
