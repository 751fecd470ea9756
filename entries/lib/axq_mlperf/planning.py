"""Plan a LoadGen run's user.conf from its parameters: the values they fix, and the targets to time.

Two kinds of run (`loadgen_execution`): `test` is short: min_duration (`loadgen_duration_s`,
1 s unless given), query counts and the targets given; `valid` is the official run: only
the targets and the performance sample count the rules ask for, so the embedded
mlperf.conf's 600 s, query counts and RNG seeds apply. Targets left null are timed by the
LoadGen child (see the harness), which gets their names in `calibrate`.

`params` is a loadgen run's resolved parameters (`loadgen_*`, `model_name`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from axq.errors import BuildError
from axq_mlperf.scenarios import OFFICIAL_SAMPLE_COUNTS, OFFICIAL_SERVER_LATENCY

TEST_DURATION_S = 1  # min_duration of a test run when loadgen_duration_s is null
# LoadGen's early stopping (loadgen/early_stopping.cc, results.cc): with `late` queries over
# the bound, a run passes once it has h + late queries, h the least count for which
# P[Binomial(h + late, 1 - percentile) <= late] < 1 - confidence. Its percentile and confidence:
SERVER_PERCENTILE, CONFIDENCE = 0.99, 0.99
# The share of a short Server test's queries that may be late with early stopping still met:
# half of what the 99th percentile allows. 662 queries (the old count) failed with 3 late
# (0.45%, one short stall); the count below tolerates any 0.5% share.
LATE_SHARE = 0.005


def early_stopping_queries(late: int, percentile: float = SERVER_PERCENTILE, confidence: float = CONFIDENCE) -> int:
    """Return the queries a Server run needs for early stopping when `late` of them exceed the bound.

    LoadGen's rule, as loadgen/results.cc applies it: 459 with none late, 662 with one,
    1001 with three (the "Would need to run at least 339 more queries" after 662).
    """
    low, high = 1, 1 << 24
    while low < high:  # the least h whose odds fall below 1 - confidence (they fall as h grows)
        h = (low + high) // 2
        if binomial_cdf(late, h + late, 1 - percentile) < 1 - confidence:
            high = h
        else:
            low = h + 1
    return low + late


def binomial_cdf(k: int, n: int, q: float) -> float:
    """Return P[X <= k] for X ~ Binomial(n, q), summed in logs (k is small here)."""
    def term(x: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
                        + x * math.log(q) + (n - x) * math.log1p(-q))
    return sum(term(x) for x in range(k + 1))


def tail_tolerant_queries(share: float = LATE_SHARE, percentile: float = SERVER_PERCENTILE) -> int:
    """Return the least query count from which on every Server run with `share` of its queries late passes.

    A run of n queries has floor(share x n) late ones and passes if n >= early_stopping_queries
    of that; counts just above a step of the floor can fail where smaller ones pass, so the
    answer is the end of the last failing range. The needed count per late query falls
    towards 1 / (1 - percentile) = 100 as more are late, below 1 / share: the ranges end.
    """
    least, late = 1, 0
    while True:
        needed = early_stopping_queries(late, percentile)
        if needed <= math.ceil(late / share) and late > 0:
            return least
        least = max(least, min(needed, math.ceil((late + 1) / share)))
        late += 1


SERVER_TEST_QUERIES = tail_tolerant_queries()  # 2010: 4 s at 500 QPS, within 1 s from 2010 QPS
# Early stopping needs at least this many queries at the 90th and 99th percentile (the
# minimums mlperf.conf itself sets for SingleStream/Server are far larger: a full run);
# a Server test gets enough for a realistic tail (above).
MIN_QUERIES = {"SingleStream": 64, "MultiStream": 662, "Server": SERVER_TEST_QUERIES, "Offline": 1}

Plan = tuple[dict[str, float], list[str]]


def conf_plan(params: Mapping[str, Any], dataset_size: int) -> Plan:
    """Return the user.conf values the parameters fix, and the targets for the child to time."""
    if params["loadgen_execution"] == "valid":
        return valid_plan(params, dataset_size)
    duration = params["loadgen_duration_s"] or TEST_DURATION_S
    settings: dict[str, float] = {"min_duration": round(duration * 1000),
                                  "performance_sample_count_override": sample_count(params, dataset_size)}
    settings.update(query_counts(params))
    settings.update(stream_size(params))
    targets = target_values(params)
    settings.update({k: v for k, v in targets.items() if v is not None})
    calibrate = [k for k, v in targets.items() if v is None and needs_timing(params)]
    if query_floor(params):
        calibrate.append("min_query_count")
    return settings, calibrate


def valid_plan(params: Mapping[str, Any], dataset_size: int) -> Plan:
    """Return an official run's user.conf values (targets and sample count) and the targets to time.

    mlperf.conf's durations, query counts and seeds stay untouched; a Server latency bound
    mlperf.conf fixes for the model (resnet50: 15 ms) is neither timed nor overridden
    unless the user gives one.
    """
    settings: dict[str, float] = {"performance_sample_count_override": sample_count(params, dataset_size)}
    settings.update(stream_size(params))
    targets = target_values(params)
    if params["loadgen_scenario"] == "Server" and params["model_name"] in OFFICIAL_SERVER_LATENCY:
        targets = {k: v for k, v in targets.items() if k != "target_latency" or v is not None}
    settings.update({k: v for k, v in targets.items() if v is not None})
    return settings, [k for k, v in targets.items() if v is None and needs_timing(params)]


def stream_size(params: Mapping[str, Any]) -> dict[str, float]:
    """Return MultiStream's samples per query (loadgen_multistreamness); nothing for other scenarios."""
    if params["loadgen_scenario"] == "MultiStream":
        return {"samples_per_query": params["loadgen_multistreamness"]}
    return {}


def sample_count(params: Mapping[str, Any], dataset_size: int) -> int:
    """Return the performance sample count: the buffer size, else the rules' count, else the data set.

    Never more than the data set: a larger loadgen_buffer_size gets the data set's size, as
    the MLPerf reference harness does (min of the two; the build log says so).
    """
    buffer, official = params["loadgen_buffer_size"], OFFICIAL_SAMPLE_COUNTS.get(params["model_name"])
    if buffer is not None and params["loadgen_execution"] == "valid" and buffer < (official or dataset_size):
        raise BuildError(f"loadgen_buffer_size={buffer} is fewer samples than a valid run of "
                         f"{params['model_name']} needs ({official or dataset_size}); leave it null")
    if buffer is not None:
        return min(buffer, dataset_size)
    official = official if params["loadgen_execution"] == "valid" else None
    return min(official or dataset_size, dataset_size)


def query_counts(params: Mapping[str, Any]) -> dict[str, float]:
    """Return min and max query counts: exactly loadgen_query_count when set, else enough for early stopping."""
    count = params["loadgen_query_count"]
    if count is not None:
        return {"min_query_count": count, "max_query_count": count}
    if query_floor(params):
        return {}  # the child times the model and sets it (see harness.calibrate)
    return {"min_query_count": MIN_QUERIES[params["loadgen_scenario"]]}


def query_floor(params: Mapping[str, Any]) -> bool:
    """Say whether a short run with a user-given target needs a query floor to last min_duration.

    LoadGen sizes a run from the target: Offline issues max(min_query_count, 1.1 x duration
    x target_qps) samples, the stream scenarios pace queries by target_latency. A target
    easier than the real system ends the run before min_duration (INVALID). So a short
    performance run with a given target and no loadgen_query_count gets a floor timed from
    the model (Server needs none: queries arrive at the target rate for min_duration).
    """
    scenario, mode = params["loadgen_scenario"], params["loadgen_mode"]
    target = params["loadgen_target_qps"] if scenario == "Offline" else params["loadgen_target_latency"]
    return (scenario != "Server" and mode == "PerformanceOnly" and params["loadgen_query_count"] is None
            and target is not None and params["loadgen_execution"] == "test")


def target_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the scenario's user.conf targets from the parameters (None where left null)."""
    qps, latency = params["loadgen_target_qps"], params["loadgen_target_latency"]
    scenario = params["loadgen_scenario"]
    if scenario == "Offline":
        return {"target_qps": qps}
    if scenario == "Server":
        return {"target_qps": qps, "target_latency": None if latency is None else round(latency)}
    return {"target_latency": latency}


def needs_timing(params: Mapping[str, Any]) -> bool:
    """Say whether null targets matter: always but in AccuracyOnly runs other than Server."""
    return params["loadgen_mode"] == "PerformanceOnly" or params["loadgen_scenario"] == "Server"


CHILD_START_S = 1.0  # a warm child's start, warm-up and calibration, about
VALID_EXTRA_S = 80  # a valid run's longer warm-up and timing, and mlperf.conf's tail, about


def expected_test_s(params: Mapping[str, Any], settings: dict[str, float], dataset_size: int) -> float:
    """Return about how long the LoadGen child runs with these user.conf values (for the progress line).

    Server lasts until min_duration and min_query_count queries at the target rate; Offline
    issues 1.1 x duration x target samples, a target timed at twice the model's speed (so
    about 2.2 x min_duration); an accuracy run goes through the data set once.
    """
    duration = settings.get("min_duration", 600_000 if params["loadgen_execution"] == "valid" else 0) / 1000
    scenario, qps = params["loadgen_scenario"], settings.get("target_qps")
    if params["loadgen_mode"] == "AccuracyOnly":
        test = dataset_size / (qps or 10_000)
    elif scenario == "Server" and qps:
        test = max(duration, settings.get("min_query_count", 0) / qps)
    elif scenario == "Offline":
        test = 1.1 * duration * (1 if qps else 2)
    else:
        test = duration
    extra = VALID_EXTRA_S if params["loadgen_execution"] == "valid" else 0
    return CHILD_START_S + test + extra + 3 * params["harness_baseline_s"]


def reference_plan(reference_user_conf: str) -> Plan:
    """Return a reference run's user.conf values (timed targets included) as the plan, none to time.

    A compliance run must run as its reference did: the same targets, counts and durations,
    not targets timed afresh (which differ from process to process).
    """
    from axq_mlperf.userconf import parse

    return {key: value for (_, _, key), value in parse(reference_user_conf).items()}, []


def write_user_conf(path: Any, model: str, scenario: str, settings: dict[str, float]) -> None:
    """Write user.conf for the model and scenario, and read it back to check every line."""
    from axq_mlperf import userconf

    try:
        path.write_text(userconf.render(model, scenario, settings), encoding="utf-8")
        userconf.check(path, model, scenario, settings)
    except userconf.UserConfError as error:
        raise BuildError(str(error)) from None
