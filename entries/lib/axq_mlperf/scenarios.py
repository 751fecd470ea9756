"""Name MLPerf's scenarios, modes, kinds of run and compliance tests, and each scenario's headline.

Light (no imports): getters on the cached path may use it.
"""

from __future__ import annotations

SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
MODES = ("AccuracyOnly", "PerformanceOnly")
EXECUTIONS = ("test", "valid")  # a short test run, or the official run mlperf.conf describes
COMPLIANCE_TESTS = ("TEST01", "TEST04")
# The headline of each scenario in mlperf_log_summary.txt: (field, unit).
HEADLINES = {
    "Offline": ("Samples per second", "samples/s"),
    "Server": ("Completed samples per second", "samples/s"),
    "SingleStream": ("90.0th percentile latency (ns)", "ns"),
    "MultiStream": ("99.0th percentile latency (ns)", "ns"),
}
# The same headline in mlperf_log_detail.txt, as compliance/TEST01/verify_performance.py reads it.
DETAIL_METRIC = {
    "Offline": "result_samples_per_second",
    "SingleStream": "early_stopping_latency_ss",
    "MultiStream": "early_stopping_latency_ms",
    "Server": "result_completed_samples_per_sec",
}
# The summary field TEST04's verify_performance.py compares (a prefix of the key).
TEST04_FIELD = {"Offline": "Samples per second", "Server": "Completed samples per second",
                "SingleStream": "Early stopping 90", "MultiStream": "Early stopping 99"}
# LoadGen's checks behind VALID (the first only in Server runs): results key -> summary field.
CHECKS = {"latency_constraint_met": "Performance constraints satisfied",
          "min_duration_met": "Min duration satisfied", "min_queries_met": "Min queries satisfied",
          "early_stopping_met": "Early stopping satisfied"}
# Performance sample counts the rules fix (the embedded mlperf.conf, by model name); a model
# they don't know uses the whole data set.
OFFICIAL_SAMPLE_COUNTS = {"resnet50": 1024}
# Models whose Server latency bound mlperf.conf fixes: a valid run must not time its own.
OFFICIAL_SERVER_LATENCY = frozenset({"resnet50"})
VALID_RUN_S = 600  # mlperf.conf's min_duration of an official run


def is_stream(scenario: str) -> bool:
    """Say whether the scenario's headline is a latency (SingleStream, MultiStream)."""
    return scenario.endswith("Stream")
