"""Measure the LoadGen harness's overhead: Offline through LoadGen vs a bare loop.

The path users take: `axq.byquery("loadgen_output,classified_digits,...")` through the real
kernel (digits, the small CNN trained by its recipe, cached in a private work collection),
the real LoadGen child and SUT of `entries/loadgen_program`. In one run:

1. the query with `loadgen_mode=PerformanceOnly,loadgen_scenario=Offline` and
   `harness_baseline_s` set, so that the test process also times the bare model (the same
   shuffled batches through the same predict(), no LoadGen) right before and right after
   the test, on the same thread, and takes their mean (a first loop warms the process up: a
   fresh process runs slower for its first seconds); each repeat removes the run first
   (`axq.remove`), so it is measured afresh;
2. the same query with a model that returns at once (a recipe in a temporary recipe root,
   as a user would add one), to show the harness's own ceiling: `--repeats` times each with
   samples completed through LoadGen's C entry point (sut_completion=auto) and through its
   Python binding (sut_completion=python), interleaved.

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
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

QUERY = "loadgen_output,classified_digits,loadgen_mode=PerformanceOnly,loadgen_scenario=Offline"
COMPLETIONS = ("auto", "python")  # sut_completion: LoadGen's C entry point, its Python binding
INSTANT_RECIPE = {
    "version": 1,
    "description": "A digits 'model' that returns fixed logits at once (the harness's ceiling).",
    "parameters": {},
    "producers": [{"tags": ["model"], "params": {"model_name": "instant", "dataset_name": "digits"}}],
    "getters": [],
}
INSTANT_CODE = '''
def build(ctx):
    return {}


def load_model(entry, device="cpu"):
    import torch

    class Instant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 10)

    return Instant().eval().to(device)
'''


def write_instant_recipe(root: Path) -> Path:
    """Write the instant model's recipe under root and return the recipe root."""
    recipe = root / "recipes" / "model_instant"
    recipe.mkdir(parents=True)
    (recipe / "recipe.json").write_text(json.dumps(INSTANT_RECIPE))
    (recipe / "code.py").write_text(INSTANT_CODE)
    return recipe.parent


def bare_rate(run: Any, batch: int, seconds: float) -> float:
    """Return samples/s of the run's model in a plain loop over its data set's batches, on a worker thread."""
    import torch

    images, _ = run.dep("preprocessed").call("load_arrays", False)
    images = torch.from_numpy(images)
    model = run.dep("model").call("load_model", "cpu")
    found: list[float] = []

    def loop() -> None:
        with torch.inference_mode():
            for start in range(0, 4 * batch, batch):
                model(images[start:start + batch]).argmax(1).numpy()
            done, began = 0, time.perf_counter()
            while time.perf_counter() - began < seconds:
                start = (done % (len(images) - batch)) // batch * batch
                model(images[start:start + batch]).argmax(1).numpy()
                done += batch
            found.append(done / (time.perf_counter() - began))

    worker = threading.Thread(target=loop)
    worker.start()
    worker.join()
    return found[0]


def harness_run(settings: str) -> Any:
    """Run one LoadGen Offline PerformanceOnly test through the real query, afresh; return its entry."""
    import axq
    from axq.progress import Reporter

    quiet = Reporter("quiet")
    query = f"{QUERY},{settings}"
    for old in axq.list_entries(query):
        axq.remove(old.name)
    return axq.byquery(query, reporter=quiet)


def main() -> None:
    """Measure and print the harness against the bare model (same process), and its ceiling."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    common = f"batch_size={args.batch_size},num_threads={args.threads},loadgen_duration_s={args.seconds}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AXQ_WORK_COLLECTION"] = str(Path(tmp) / "wc")
        os.environ["AXQ_ENTRIES"] = str(write_instant_recipe(Path(tmp)))
        first = harness_run(common)  # builds the chain; also the warm-up of this machine
        cross = bare_rate(first, args.batch_size, args.seconds)
        runs = [harness_run(f"{common},loadgen_target_qps={round(cross, 1)},harness_baseline_s={args.seconds}")
                for _ in range(args.repeats)]
        instant: dict[str, list[dict]] = {kind: [] for kind in COMPLETIONS}
        for _ in range(args.repeats):
            for kind, found in instant.items():
                found.append(harness_run(f"{common},model_name=instant,sut_completion={kind}").results)
        report(args, [r.results for r in runs], instant, cross)


def report(args: Any, runs: list[dict], instant: dict[str, list[dict]], cross: float) -> None:
    """Print each run and the medians."""
    print(f"digits small CNN (axq query, real kernel and SUT), 1x8x8 inputs, batch {args.batch_size}, "
          f"{args.threads} torch thread(s), {args.seconds:g} s per measurement")
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
    ceiling = {kind: statistics.median(r["performance"] for r in found) for kind, found in instant.items()}
    valid = sum(r["valid"] for found in instant.values() for r in found)
    print(f"harness with an instant model (medians):    {ceiling['auto']:.0f} samples/s through LoadGen's C entry "
          f"point, {ceiling['python']:.0f} through its Python binding ({ceiling['auto'] / ceiling['python']:.2f}x; "
          f"{valid}/{2 * args.repeats} VALID)")
    print(f"(the same bare loop in the parent process:  {cross:.1f}/s; processes differ, so not the baseline)")


if __name__ == "__main__":
    main()
