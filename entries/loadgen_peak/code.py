"""Find the highest target QPS whose LoadGen Server run is VALID; for Offline, one run.

The search is ours, not LoadGen's TestMode.FindPeakPerformance. Every probe is an ordinary
`loadgen_output,...,loadgen_mode=PerformanceOnly,loadgen_target_qps=Q` entry built (or
reused) through `axq.byquery`, so probes are cached, listed, plotted and shared with any
sweep over the same parameters, and a rerun or a wider search reuses them. LoadGen's own
mode runs its internal binary search in one process, re-runs full-length tests at each
step, records no probe as an entry and cannot start from cached results.

Server: probe `peak_start_qps`, then double until a probe is INVALID or `peak_max_qps` is
reached (halve instead while the start itself is INVALID), then bisect between the last
VALID and the first INVALID target until the bracket is narrower than `peak_tolerance`
of the VALID end. Targets are integers so that probes of different searches coincide.
Offline: one PerformanceOnly run; its samples per second is the peak.

Probes pass on every parameter the loadgen_program recipe takes; null ones are left out,
so they take that recipe's defaults (a 1 s test run, batch 32, ...), the latency bound
included: `loadgen_target_latency` stays null unless the query sets it, so each probe
is the very entry `axq byquery ...,loadgen_scenario=Server,loadgen_target_qps=Q` builds
(shared with sweeps and one-liners) and runs at the bound such a run times (at least
50 ms for the small data sets). A bound timed in each probe's process can differ from
probe to probe on a busy machine, so each probe records its bound and the report states
the bound the peak was found at (a range where they differ). A search that reaches
peak_max_qps still VALID has found a lower bound, not a peak, and says so.
LoadGen's Server early stopping needs about 460 queries even when none is late: the search
never starts below 460 / duration QPS.

Getters (getters.py) read only `entry.results`: no torch, numpy or LoadGen on the cached path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from axq_mlperf.planning import TEST_DURATION_S
from axq_mlperf.resources import cluster_resources  # noqa: F401  (the recipe's "resources" hook)

if TYPE_CHECKING:
    from axq.entry import BuildContext, Params

# Parameters of the search itself (not passed to the probes) and those the probes fix.
SEARCH = ("peak_start_qps", "peak_max_qps", "peak_tolerance")
FIXED = ("framework", "dataset_name", "task", "loadgen_mode")
# Queries LoadGen's Server early stopping needs with none over the latency bound.
EARLY_STOPPING_QUERIES = 460

Probe = dict[str, Any]


# ----------------------------------------------------------------------------- build


def build(ctx: BuildContext) -> dict:
    """Run the search (each probe a cached entry) and report the peak."""
    params = ctx.params
    run = prober(ctx)
    if params["loadgen_scenario"] == "Offline":
        return offline_results(run(None))
    probes = search(run, params["peak_start_qps"], params["peak_max_qps"], params["peak_tolerance"],
                    floor_qps(params))
    return server_results(probes, params["peak_max_qps"])


def floor_qps(params: Params) -> int:
    """Return the lowest target QPS whose Server run lasts long enough for early stopping."""
    import math

    return math.ceil(EARLY_STOPPING_QUERIES / (params["loadgen_duration_s"] or TEST_DURATION_S))


def check_params(params: dict) -> None:
    """Raise ParameterError for search bounds that don't fit together (recipe.json checks each value)."""
    from axq.errors import ParameterError
    from axq_mlperf import system

    system.require_device_here(params["device"], params["system"])  # before any probe, as a run checks it
    start, cap = params["peak_start_qps"], params["peak_max_qps"]
    if params["loadgen_scenario"] == "Server" and start < floor_qps(params):
        raise ParameterError("peak_start_qps", start, f"is below {floor_qps(params)} QPS, too few queries in a run "
                             "for LoadGen's early stopping; raise peak_start_qps or loadgen_duration_s")
    if start > cap:
        raise ParameterError("peak_start_qps", start, f"is above peak_max_qps={cap}; lower the start or raise the cap")


def planned_deps(params: dict) -> dict[str, tuple[str, dict]]:
    """Return an ImageNet search's preprocessed data: the model's own preprocessing, as its probes use."""
    if params["dataset_name"] != "imagenet":
        return {}
    from axq_mlperf.classifiers import preprocessed_query

    return {"preprocessed": preprocessed_query(params)}


PROBE_START_S = 1.5  # a warm probe's start, calibration and records, beside its test


def expected_seconds(params: dict) -> float:
    """Return about how long the search takes, none cached: a probe per doubling up to the cap, then bisections.

    A Server probe's test lasts until its min_duration and SERVER_TEST_QUERIES queries at
    its target (axq_mlperf.planning); bisection probes run near the top target.
    """
    import math

    from axq_mlperf.planning import SERVER_TEST_QUERIES

    duration = params["loadgen_duration_s"] or TEST_DURATION_S
    if params["loadgen_scenario"] == "Offline":
        return PROBE_START_S + 2.2 * duration

    def probe_s(qps: float) -> float:
        return PROBE_START_S + max(duration, SERVER_TEST_QUERIES / qps)

    start, cap = params["peak_start_qps"], params["peak_max_qps"]
    targets = [min(cap, start * 2 ** k) for k in range(math.ceil(math.log2(cap / start)) + 1)]
    bisections = math.ceil(math.log2(1 / params["peak_tolerance"]))
    return sum(probe_s(q) for q in targets) + bisections * probe_s(cap / 2)


def probe_overrides(params: Params, qps: int | None) -> dict[str, Any]:
    """Return a probe's parameters: the pass-through ones, PerformanceOnly, the target QPS."""
    passed = {k: v for k, v in params.items() if k not in SEARCH + FIXED and v is not None}
    return {**passed, "framework": params["framework"], "loadgen_mode": "PerformanceOnly",
            "loadgen_target_qps": qps}


def prober(ctx: BuildContext) -> Callable[[int | None], Probe]:
    """Return a function that runs (or reuses) one probe at a target QPS and logs it."""
    from axq_mlperf.tasks import run_query

    query = run_query(ctx.params["dataset_name"])

    def run(qps: int | None) -> Probe:
        entry = ctx.byquery(query, probe_overrides(ctx.params, qps))
        found = probe_record(entry, qps)
        ctx.log(f"probe {found['qps'] if qps else 'Offline'}: {'VALID' if found['valid'] else 'INVALID'}, "
                f"{found['performance']} samples/s ({entry.name})")
        return found

    return run


def probe_record(entry: Any, qps: int | None) -> Probe:
    """Return what the peak entry keeps of one probe: target, validity, throughput, entry."""
    results = entry.results
    bound = (results.get("summary") or {}).get("target_latency (ns)")
    return {"qps": qps, "valid": bool(results.get("result_valid")), "performance": results.get("performance"),
            "bound_ms": bound / 1e6 if isinstance(bound, (int, float)) else None, "entry": entry.name}


# ----------------------------------------------------------------------------- search


def search(run: Callable[[int], Probe], start: int, cap: int, tolerance: float, floor: int) -> list[Probe]:
    """Return every probe of the search in the order run: bracket, then bisect."""
    probes = bracket(run, start, cap, floor)
    low, high = bounds(probes)
    while low is not None and high is not None and high - low > max(1.0, tolerance * low):
        probes.append(run((low + high) // 2))
        low, high = bounds(probes)
    return probes


def bracket(run: Callable[[int], Probe], start: int, cap: int, floor: int) -> list[Probe]:
    """Probe from start, doubling while VALID (up to cap) or halving while INVALID (down to floor)."""
    probes = [run(start)]
    step = 2 if probes[0]["valid"] else 0.5
    while probes[-1]["valid"] == probes[0]["valid"]:
        qps = min(cap, int(probes[-1]["qps"] * step))
        if qps < floor or qps == probes[-1]["qps"]:
            break
        probes.append(run(qps))
    return probes


def bounds(probes: list[Probe]) -> tuple[int | None, int | None]:
    """Return the highest VALID target and the lowest INVALID target above it (None if none)."""
    low = max((p["qps"] for p in probes if p["valid"]), default=None)
    above = [p["qps"] for p in probes if not p["valid"] and (low is None or p["qps"] > low)]
    return low, min(above, default=None)


# ----------------------------------------------------------------------------- results


def server_results(probes: list[Probe], cap: int) -> dict:
    """Return the peak, the probe that reached it and the first INVALID target above it."""
    low, high = bounds(probes)
    ordered = sorted(probes, key=lambda p: p["qps"])
    bounds_ms = sorted({p["bound_ms"] for p in ordered if p.get("bound_ms") is not None})
    results: dict[str, Any] = {"scenario": "Server", "probes": ordered, "peak_max_qps": cap,
                               "first_invalid_qps": high, "at_cap": low == cap and high is None,
                               "latency_bounds_ms": bounds_ms}
    if low is None:
        lowest = ordered[0]["qps"]
        reason = (f"no Server run was VALID, down to loadgen_target_qps={lowest}; why: `axq byname "
                  f"{ordered[0]['entry']} , get performance_report`")
        return {**results, "performance": None, "valid": False, "invalid_reason": reason}
    peak = next(p for p in ordered if p["qps"] == low)
    return {**results, "performance": low, "peak_samples_per_second": peak["performance"],
            "peak_entry": peak["entry"], "peak_bound_ms": peak.get("bound_ms"), "valid": True}


def offline_results(probe: Probe) -> dict:
    """Return the one Offline run as the peak: its samples per second."""
    results: dict[str, Any] = {"scenario": "Offline", "probes": [probe], "performance": probe["performance"],
                               "peak_samples_per_second": probe["performance"], "peak_entry": probe["entry"],
                               "valid": probe["valid"]}
    if not probe["valid"]:
        results["invalid_reason"] = f"the Offline run was INVALID; see {probe['entry']}"
    return results
