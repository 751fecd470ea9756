"""Say how `axq explore` scores a configuration of an MLPerf LoadGen run.

A LoadGen recipe exposes `explore_plan` in its code.py and names it in recipe.json
(`"explore": "explore_plan"`). A configuration is scored by two runs of the same
parameters: AccuracyOnly (read with the `accuracy` getter) and PerformanceOnly (the
scenario's headline, `performance`: samples/s for Offline and Server, higher is better; the
percentile latency in ns for SingleStream and MultiStream, lower is better). Accuracy is
compared with the fp32 PyTorch run of the same configuration, and MLPerf's closed division
asks for 99% of it.

Light (no imports beyond axq_mlperf.scenarios): it runs while a query is resolved.
"""

from __future__ import annotations

from axq_mlperf.scenarios import HEADLINES, is_stream

REFERENCE = {"framework": "pytorch", "precision": "fp32"}  # what accuracy is compared with
ACCURACY_TARGET = 0.99  # MLPerf's closed division: 99% of the reference's accuracy


def explore_plan(params: dict) -> dict:
    """Return the accuracy run, the performance run, the reference and the target of a configuration."""
    scenario = params["loadgen_scenario"]
    return {
        "accuracy": {"overrides": {"loadgen_mode": "AccuracyOnly"}, "getter": "accuracy"},
        "performance": {"overrides": {"loadgen_mode": "PerformanceOnly"}, "getter": "performance",
                        "higher_is_better": not is_stream(scenario), "unit": HEADLINES[scenario][1]},
        "reference": dict(REFERENCE),
        "target": ACCURACY_TARGET,
    }
