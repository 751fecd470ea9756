"""Where a LoadGen run's time went, per sample: queue, inference, response, and the harness's share.

The SUT records, per batch, when its inference began, when it ended, when it called
QuerySamplesComplete and when that call returned (all instances' clocks are one: perf_counter_ns), and,
per chunk of samples LoadGen issued in one call, when that call came, how many samples
it held and which batch answered them. For each sample:

- queue: issue to the start of its batch's inference (waiting for a free instance, and in
  Server for the batch to fill, at most server_max_wait_ms);
- inference: its batch's predict call (gathering the held samples, the model, argmax);
- response: end of inference to QuerySamplesComplete returning (building the responses,
  LoadGen's bookkeeping);
- end to end: issue to completion, so the three sum to it exactly.

The harness's own part of an instance's time is what the SUT spends on a batch other than
inference: from the moment the batch could have started (its last sample issued and the
instance free) to the start of inference, plus the response. `harness_share` is that part
of the instances' active time, `harness_us_per_batch` its mean per batch (per query in the
stream scenarios). It splits into `loadgen_call_share`, the QuerySamplesComplete call itself
(LoadGen's Python binding turning the responses into C++ ones, and LoadGen's bookkeeping),
and `harness_own_share`, the rest (axq's dispatch and making the responses).

Array layouts (what latency_breakdown.npz keeps): batches are rows of (instance, began,
inferred, sent, done), chunks rows of (instance, issued, samples, batch number within its
instance), all in ns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PERCENTILES = (50, 90, 99)
PARTS = ("queue", "inference", "response", "end_to_end")


def summarise(batches: np.ndarray, chunks: np.ndarray) -> dict[str, Any]:
    """Return each part's mean and percentiles in ms, and the harness's share and time per batch."""
    if not len(batches):
        return {"samples": 0, "batches": 0}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in PARTS}
    weights, harness, active, calls = [], [], [], []
    for instance in np.unique(batches[:, 0]):
        timed, issued = batches[batches[:, 0] == instance, 1:], chunks[chunks[:, 0] == instance, 1:]
        began, inferred, _, done = timed[issued[:, 2]].T
        for name, value in zip(PARTS, (began - issued[:, 0], inferred - began, done - inferred,
                                       done - issued[:, 0]), strict=True):
            parts[name].append(value)
        weights.append(issued[:, 1])
        spent, busy = harness_time(timed, issued)
        harness.append(spent)
        active.append(busy)
        calls.append(timed[:, 3] - timed[:, 2])
    weight = np.concatenate(weights)
    found: dict[str, Any] = {f"{name}_ms": stats(np.concatenate(values), weight) for name, values in parts.items()}
    spent_ns, active_ns, call_ns = np.concatenate(harness), np.concatenate(active), np.concatenate(calls)
    active_sum = max(float(active_ns.sum()), 1.0)
    found.update(samples=int(weight.sum()), batches=len(batches),
                 harness_share=round(float(spent_ns.sum()) / active_sum, 5),
                 harness_own_share=round(float(spent_ns.sum() - call_ns.sum()) / active_sum, 5),
                 loadgen_call_share=round(float(call_ns.sum()) / active_sum, 5),
                 harness_us_per_batch=round(float(spent_ns.mean()) / 1e3, 2))
    return found


def harness_time(timed: np.ndarray, issued: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per batch of one instance the harness's ns and the active ns (from ready to done).

    A batch is ready when its last sample has been issued and the instance's previous
    batch is done.
    """
    began, inferred, _, done = timed.T
    last_issue = np.full(len(timed), np.iinfo(np.int64).min)
    np.maximum.at(last_issue, issued[:, 2], issued[:, 0])
    previous = np.concatenate([[np.iinfo(np.int64).min], done[:-1]])
    ready = np.maximum(last_issue, previous)
    return (began - ready) + (done - inferred), done - ready


def stats(values: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Return the weighted mean and percentiles of ns values, in ms."""
    order = np.argsort(values, kind="stable")
    ranked, cumulative = values[order], np.cumsum(weights[order])
    total = cumulative[-1]
    found = {"mean": float((values.astype(np.float64) * weights).sum() / total) / 1e6}  # int64 would overflow
    for percentile in PERCENTILES:
        index = min(int(np.searchsorted(cumulative, percentile / 100 * total)), len(ranked) - 1)
        found[f"p{percentile}"] = float(ranked[index]) / 1e6
    return {key: round(value, 6) for key, value in found.items()}
