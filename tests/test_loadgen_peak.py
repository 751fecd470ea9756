"""The peak search of entries/loadgen_peak: real LoadGen probes built through the kernel.

One work collection per module, so the digits chain is built once. The search's bracket
and bisection are also checked against fixed capacities (a table), which needs no LoadGen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import axq
from axq.entry import load_code
from axq.errors import ParameterError
from axq.progress import Reporter
from axq.resolve import resolve
from tests.conftest import REPO

PEAK = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=FindPeakPerformance"
# A short search: 500, 1000, 2000 (the cap) unless one of them is INVALID on this machine; at a 50 ms
# bound given, as the timed one (at least 50 ms) could differ from probe to probe: the test is of the search.
SMALL = f"{PEAK},loadgen_scenario=Server,peak_start_qps=500,peak_max_qps=2000,peak_tolerance=0.25," \
        "loadgen_target_latency=50"
PLAIN_SERVER = "loadgen_output,classified_digits,framework=pytorch,loadgen_mode=PerformanceOnly,loadgen_scenario=Server"
QUIET = Reporter("quiet")


@pytest.fixture(scope="module")
def peak(collection: Path) -> axq.entry.Entry:
    """Run the short Server search once for the module."""
    return axq.byquery(SMALL, reporter=QUIET)


def code() -> object:
    """Return the recipe's code module."""
    return load_code(str(REPO / "entries" / "loadgen_peak" / "code.py"))


def fixed_capacity(capacity: int, calls: list[int]) -> Callable[[int], dict]:
    """Return a probe that is VALID up to capacity and records each target it is asked."""
    def run(qps: int) -> dict:
        calls.append(qps)
        return {"qps": qps, "valid": qps <= capacity, "performance": float(min(qps, capacity)), "entry": f"e{qps}"}

    return run


@pytest.mark.parametrize(
    ("capacity", "start", "cap", "tolerance", "peak", "first_invalid"),
    [
        (3000, 500, 16000, 0.1, 3000, 3250),        # double 500..4000, then bisect 2000..4000
        (20000, 500, 16000, 0.1, 16000, None),      # VALID at the cap
        (700, 2000, 16000, 0.1, 687, 750),          # halve from an INVALID start, then bisect
        (300, 1000, 16000, 0.1, None, 500),         # never VALID above the floor of 460
    ],
)
def test_bracket_then_bisect(capacity, start, cap, tolerance, peak, first_invalid):
    calls: list[int] = []
    probes = code().search(fixed_capacity(capacity, calls), start, cap, tolerance, 460)
    low, high = code().bounds(probes)
    assert (low, high) == (peak, first_invalid)
    assert len(calls) == len(set(calls)) and all(isinstance(q, int) for q in calls)
    if low is not None and high is not None:
        assert high - low <= max(1, tolerance * low)


def test_the_peak_is_valid_and_the_probe_above_is_invalid_or_the_cap(peak):
    probes = peak.get("probes")
    at_peak = next(p for p in probes if p["qps"] == peak.get("performance"))
    above = [p for p in probes if p["qps"] > at_peak["qps"]]
    assert at_peak["valid"] is True and peak.get("result_valid") is True
    assert (above and above[0]["valid"] is False) or at_peak["qps"] == 2000
    assert peak.get("peak_samples_per_second") == at_peak["performance"] > 0
    assert [p["qps"] for p in probes] == sorted(p["qps"] for p in probes) and probes[0]["qps"] == 500


def test_every_probe_is_an_entry_with_its_results(peak):
    for probe in peak.get("probes"):
        entry = axq.byname(probe["entry"])
        assert entry.params["loadgen_target_qps"] == probe["qps"]
        assert entry.params["loadgen_mode"] == "PerformanceOnly"
        assert entry.get("result_valid") is probe["valid"] and entry.get("performance") == probe["performance"]
    listed = axq.list_entries("loadgen_output,loadgen_mode=PerformanceOnly,loadgen_scenario=Server")
    assert {e.name for e in listed} == {p["entry"] for p in peak.get("probes")}


def test_a_wider_search_reuses_the_probes(peak):
    before = {p["entry"]: axq.byname(p["entry"]).manifest["provenance"]["started"] for p in peak.get("probes")}
    again = axq.byquery(SMALL.replace("peak_tolerance=0.25", "peak_tolerance=0.2"), reporter=QUIET)
    assert again.name != peak.name and again.get("probes") == peak.get("probes")
    assert {name: axq.byname(name).manifest["provenance"]["started"] for name in before} == before


def test_the_report_names_the_peak_and_what_bounds_it(peak):
    report = peak.get("peak_report")
    at_cap = "a lower bound, not a peak (the cap peak_max_qps=2000 was reached" in report
    assert report.startswith(f"Server peak: {'at least ' if at_cap else ''}{peak.get('performance')} QPS VALID")
    assert "INVALID" in report.split("VALID", 1)[1] or at_cap
    bound = next(p["bound_ms"] for p in peak.get("probes") if p["qps"] == peak.get("performance"))
    assert f"samples/s) at a {bound:g} ms latency bound" in report


def test_probes_are_the_plain_server_runs_of_the_same_query(peak):
    for probe in peak.get("probes"):
        (step, *_) = axq.plan(f"{PLAIN_SERVER},loadgen_target_latency=50,loadgen_target_qps={probe['qps']}")
        assert step.cached and step.node.name == probe["entry"]  # the probe is that run's entry
        assert probe["bound_ms"] == axq.byname(probe["entry"]).get("latency_bound_ms") == 50


def test_a_default_search_probes_at_the_bound_a_plain_server_run_times(collection):
    params = resolve(f"{PEAK},loadgen_scenario=Server").params
    assert params["loadgen_target_latency"] is None  # not a fixed bound of its own
    overrides = code().probe_overrides(params, 500)
    probe = resolve("loadgen_output,classified_digits", overrides)
    assert probe.identity == resolve(f"{PLAIN_SERVER},loadgen_target_qps=500").identity
    assert probe.params["loadgen_target_latency"] is None


def getters() -> object:
    """Return the recipe's getters module."""
    return load_code(str(REPO / "entries" / "loadgen_peak" / "getters.py"))


def test_a_search_that_reaches_the_cap_reports_a_lower_bound_not_a_peak():
    probes = code().search(fixed_capacity(20000, []), 500, 16000, 0.1, 460)
    capped = getters().report_line(code().server_results(probes, 16000))
    assert capped.startswith("Server peak: at least 16000 QPS VALID (16000.0 samples/s)")
    assert "a lower bound, not a peak (the cap peak_max_qps=16000 was reached; raise it" in capped
    peaked = getters().report_line(code().server_results(code().search(fixed_capacity(3000, []), 500, 16000,
                                                                           0.1, 460), 16000))
    assert peaked.startswith("Server peak: 3000 QPS VALID (3000.0 samples/s), 3250 QPS INVALID")


def test_offline_is_a_single_run(collection):
    entry = axq.byquery(f"{PEAK},loadgen_scenario=Offline", reporter=QUIET)
    (probe,) = entry.get("probes")
    run = axq.byname(probe["entry"])
    assert run.params["loadgen_scenario"] == "Offline" and run.params["loadgen_target_qps"] is None
    assert entry.get("performance") == run.get("performance") == entry.get("peak_samples_per_second") > 0
    assert entry.get("peak_report").startswith("Offline peak: ")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("loadgen_scenario=SingleStream", "must be one of Server, Offline"),
        ("peak_start_qps=4000,peak_max_qps=1000", "is above peak_max_qps=1000"),
        ("peak_start_qps=100", "too few queries in a run for LoadGen's early stopping"),
        ("peak_tolerance=2", "must be at most 0.9"),
        ("peak_max_qps=1.5", "must be an integer"),
    ],
)
def test_bad_parameters_are_one_line_errors_before_anything_is_built(collection, settings, message):
    before = {entry.name for entry in axq.list_entries("")}
    with pytest.raises(ParameterError, match=message) as caught:
        axq.byquery(f"{PEAK},{settings}", reporter=QUIET)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2
    assert {entry.name for entry in axq.list_entries("")} == before
