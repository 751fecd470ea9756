"""Read what a finished LoadGen run left in its directory: validity, headline, accuracy, SUT statistics.

A performance run also records its measurement report (axq.measure): whether the machine
was contended, and the share of its CPU time other processes used (`contention`).

An accuracy run's mlperf_log_accuracy.json is scored by the run's task
(axq_mlperf.tasks: a classifier's top-1, a detector's COCO mAP).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axq_mlperf import logs
from axq_mlperf.scenarios import CHECKS, HEADLINES

if TYPE_CHECKING:
    from axq.entry import Entry
    from axq_mlperf.tasks import Task

CALIBRATION, SUT_STATS = "calibration.json", "sut_stats.json"
TIMINGS = "timings.json"  # what the calibrated targets came from (harness.calibrate; cached by the build)
# The latency breakdown (axq_mlperf.breakdown): its summary, and the raw times it came from.
BREAKDOWN, BREAKDOWN_RAW = "latency_breakdown.json", "latency_breakdown.npz"
# profile=true: the list of files the runtime's profiler wrote, and where it wrote them.
PROFILE, PROFILE_DIR = "profile.json", "profile"


def collect_results(path: Path, scenario: str, mode: str, task: Task, dataset: Entry) -> dict:
    """Return the results of a finished test: summary, validity, headline or the task's accuracy, SUT statistics."""
    text = (Path(path) / logs.SUMMARY).read_text(encoding="utf-8")
    summary = logs.parse_summary(text)
    sut = sut_stats(path)
    results = {"scenario": scenario, "mode": mode, "summary": summary, "calibrated": read_json(path, CALIBRATION),
               "sut": sut}
    results.update(run_counts(path))
    results.update(validity(summary, mode, logs.invalid_reasons(text), results))
    if mode == "AccuracyOnly":
        results.update(task.score(Path(path) / logs.ACCURACY, dataset))
        results["accuracy_line"] = task.result_line(results)
    else:
        results.update(headline(summary, scenario))
        if "bare_samples_per_s" in sut and scenario in ("Offline", "Server"):
            sut["harness_efficiency"] = round(results["performance"] / sut["bare_samples_per_s"], 4)
    results["latency_breakdown"] = latency_breakdown(path, summary)
    if (Path(path) / PROFILE).is_file():
        results["profile"] = read_json(path, PROFILE)
    return results


def latency_breakdown(path: Path, summary: dict) -> dict:
    """Return the SUT's latency breakdown, with LoadGen's own mean latency beside it (performance runs)."""
    found = read_json(path, BREAKDOWN)
    mean_ns = summary.get("Mean latency (ns)")
    if isinstance(mean_ns, (int, float)):
        found["loadgen_mean_ms"] = round(mean_ns / 1e6, 6)
    return found


def contention(report: dict) -> dict:
    """Return what a performance run records of its measurement: contended, other processes' share, the report."""
    return {"contended": bool(report["contended"]), "other_cpu_share": report["other_cpu_share"],
            "measurement": report}


def read_json(path: Path, name: str) -> Any:
    """Return the JSON file `name` of a run directory."""
    return json.loads((Path(path) / name).read_text(encoding="utf-8"))


def sut_stats(path: Path) -> dict:
    """Return the child's SUT statistics with the fraction of the test the SUT was busy."""
    sut = read_json(path, SUT_STATS)
    sut["sut_busy_fraction"] = round(sut["sut_busy_s"] / sut["test_wall_s"], 4) if sut["test_wall_s"] else None
    return sut


def result_line(found: dict) -> str:
    """Return a finished run's result on one line: headline with unit, VALID/INVALID and why, LoadGen's warnings."""
    if "accuracy_line" in found:
        line = f"result: {found['accuracy_line']}"
    else:
        line = (f"result: {found.get('performance')} {found.get('unit')} "
                f"({found['scenario']}: {found.get('metric')})")
    line += ", VALID" if found.get("result_valid") else f", INVALID: {found.get('invalid_reason')}"
    warnings = found.get("loadgen_warnings") or []
    if warnings:
        line += f"; LoadGen warned: {'; '.join(warnings)}"
    return line


def run_counts(path: Path) -> dict:
    """Return what the detail log adds to the summary: query counts, the streams' expected latency, warnings."""
    found: dict[str, Any] = {"loadgen_warnings": []}
    detail = Path(path) / logs.DETAIL
    if not detail.is_file():
        return found
    for line in detail.read_text(encoding="utf-8").splitlines():
        if not line.startswith(logs.MLLOG):
            continue
        record = json.loads(line[len(logs.MLLOG):])
        if record.get("metadata", {}).get("is_warning") is True:
            found["loadgen_warnings"].append(f"{record['key']}: {record['value']}")
        if record["key"] in DETAIL_COUNTS:
            found[DETAIL_COUNTS[record["key"]]] = record["value"]
    return found


# Detail log counts a run keeps, by their results key.
DETAIL_COUNTS = {"result_query_count": "query_count", "result_overlatency_query_count": "overlatency_queries",
                 "requested_single_stream_expected_latency_ns": "expected_latency_ns",
                 "requested_multi_stream_expected_latency_ns": "expected_latency_ns"}


def validity(summary: dict, mode: str, reasons: list[str], counts: dict | None = None) -> dict:
    """Return result_valid, valid and (when invalid) LoadGen's reasons on one line."""
    status = summary.get("Result is")
    valid = status == "VALID" or (status is None and mode == "AccuracyOnly")
    found: dict[str, Any] = {"result_valid": valid, "valid": valid}
    if not valid:
        found["invalid_reason"] = "LoadGen: " + "; ".join(
            unmet_checks(summary, counts or {}) or reasons or [f"LoadGen reports the result as {status}"])
    return found


def unmet_checks(summary: dict, counts: dict) -> list[str]:
    """Return each of LoadGen's checks that failed, in a few words with its figures."""
    unmet = []
    if summary.get(CHECKS["latency_constraint_met"]) == "NO":
        unmet.append(f"99th percentile latency {ms(summary.get('99.00 percentile latency (ns)'))} is over the "
                     f"{ms(summary.get('target_latency (ns)'))} bound")
    if summary.get(CHECKS["early_stopping_met"]) == "NO":
        unmet.append(early_stopping_text(summary, counts))
    if summary.get(CHECKS["min_duration_met"]) == "NO":
        unmet.append(f"the test ended before min_duration ({summary.get('min_duration (ms)')} ms)")
    if summary.get(CHECKS["min_queries_met"]) == "NO":
        unmet.append(f"fewer queries than min_query_count ({summary.get('min_query_count')})")
    return unmet


def early_stopping_text(summary: dict, counts: dict) -> str:
    """Say why early stopping failed: queries run, how many were late, how many LoadGen's rule needed."""
    from axq_mlperf.planning import early_stopping_queries

    ran, late = counts.get("query_count"), counts.get("overlatency_queries")
    if not isinstance(ran, int) or not isinstance(late, int):
        return "early stopping not met"
    return (f"early stopping not met: {late} of {ran} queries over the {ms(summary.get('target_latency (ns)'))} "
            f"bound, which needs at least {early_stopping_queries(late)} queries")


def ms(ns: Any) -> str:
    """Return a time in ns as `12.3 ms` (three significant digits, no exponent: `1336 ms`)."""
    if not isinstance(ns, (int, float)):
        return "?"
    value = ns / 1e6
    return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"


def headline(summary: dict, scenario: str) -> dict:
    """Return the scenario's headline metric, its unit, and which of LoadGen's checks held."""
    metric, unit = HEADLINES[scenario]
    found = {"metric": metric, "performance": summary.get(metric), "unit": unit}
    found.update({key: summary[field] == "Yes" for key, field in CHECKS.items() if field in summary})
    return found
