"""Compute accuracy and performance from the parameters alone: fast and deterministic."""

from __future__ import annotations

import os
import time

from axq.errors import BuildError, ParameterError

ACCURACY = {"alpha": 98.0, "beta": 97.5}  # percent at fp32
LOSS = {"fp32": 0.0, "bf16": 0.3, "fp16": 0.1, "int8": 2.5}  # points lost by a lower precision
SPEED = {"alpha": 100.0, "beta": 150.0}  # samples/s per sample of batch at fp32
GAIN = {"fp32": 1.0, "bf16": 1.8, "fp16": 2.0, "int8": 3.0}
LATENCY_BOUND_MS = 100.0


def build(ctx):
    """Write the figures of one run into the results (and fail int8 on beta, as a real backend might)."""
    p = ctx.params
    if p["gate_dir"]:
        wait_at_gate(p["gate_dir"])
    if p["framework"] == "beta" and p["precision"] == "int8":
        raise BuildError("framework beta has no int8 kernels")
    found = {"built_ns": time.time_ns()}
    if p["mode"] == "accuracy":
        found["accuracy"] = ACCURACY[p["framework"]] - LOSS[p["precision"]]
        return found
    rate = p["batch_size"] * SPEED[p["framework"]] * GAIN[p["precision"]]
    latency_ns = 1e6 * p["batch_size"] / SPEED[p["framework"]] / GAIN[p["precision"]]
    found.update(latency_ns=latency_ns, latency_bound_ms=LATENCY_BOUND_MS)
    found["performance"] = latency_ns if p["scenario"] == "latency" else rate
    return found


def wait_at_gate(gate):
    """Record the build, say so through the `started` FIFO, wait for the `release` FIFO (see toy_gate)."""
    with open(os.path.join(gate, "builds.txt"), "a") as log:
        log.write(f"{os.getpid()}\n")
    with open(os.path.join(gate, "started"), "w") as started:
        started.write("started\n")
    with open(os.path.join(gate, "release")) as release:
        release.read()


def check_params(params):
    """Refuse fp16 off the GPU."""
    if params["precision"] == "fp16" and params["device"] != "gpu":
        raise ParameterError("precision", "fp16", "needs device=gpu")


def explore_plan(params):
    """Say how a configuration is scored: an accuracy run, a performance run, against alpha fp32."""
    latency = params["scenario"] == "latency"
    return {
        "accuracy": {"overrides": {"mode": "accuracy"}, "getter": "accuracy"},
        "performance": {"overrides": {"mode": "performance"}, "getter": "performance",
                        "higher_is_better": not latency, "unit": "ns" if latency else "samples/s"},
        "reference": {"framework": "alpha", "precision": "fp32"},
        "target": 0.99,
    }
