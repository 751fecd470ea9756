"""Getters of a LoadGen run: values read from the entry's results, nothing computed anew.

On the cached-query path: imports only axq.errors (which the kernel has loaded already); no
numpy, torch, LoadGen or axq_mlperf.
"""

from __future__ import annotations

from axq.errors import GetterError

TYPE_CHECKING = False  # typing costs milliseconds on the cached path; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

    from axq.entry import Entry

# LoadGen's checks behind VALID as performance_report names them (axq_mlperf.scenarios.CHECKS keys).
CHECK_KEYS = ("latency_constraint_met", "min_duration_met", "min_queries_met", "early_stopping_met")


def accuracy(entry: Entry) -> float:
    """Return the task's accuracy in percent: a classifier's top-1, a detector's mAP."""
    return float(accuracy_results(entry)["accuracy"])


def mAP(entry: Entry) -> float:
    """Return a detector's mAP@[.5:.95] in percent, as MLPerf's accuracy-coco.py prints it."""
    found = accuracy_results(entry)
    if "mAP" not in found:
        raise GetterError("no mAP: this run is not an object detection run; `get accuracy` gives its top-1")
    return float(found["mAP"])


def accuracy_report(entry: Entry) -> str:
    """Return `accuracy=98.222%, good=442, total=450`, or a detector's `mAP=62.345%, images=500, detections=1402`."""
    found = accuracy_results(entry)
    if "mAP" in found:
        return f"mAP={found['mAP']:.3f}%, images={found['images']}, detections={found['detections']}"
    return f"accuracy={found['accuracy']:.3f}%, good={found['good']}, total={found['total']}"


def coco_report(entry: Entry) -> list[str]:
    """Return a detector's COCOeval summary: its twelve Average Precision and Recall lines."""
    found = accuracy_results(entry)
    if "coco_report" not in found:
        raise GetterError("no COCO report: this run is not an object detection run")
    return list(found["coco_report"])


def performance(entry: Entry) -> float:
    """Return the headline: samples/s (Offline, Server) or percentile latency in ns."""
    return performance_results(entry)["performance"]


def performance_report(entry: Entry) -> str:
    """Return validity, headline with unit, target and LoadGen's checks on one line (and contention)."""
    found = performance_results(entry)
    checks = ", ".join(f"{key}={'yes' if found[key] else 'NO'}" for key in CHECK_KEYS if key in found)
    return (f"{'VALID' if found['result_valid'] else 'INVALID'}, {found['scenario']}: "
            f"{found['metric']} = {found['performance']} {found['unit']}, "
            f"{target_text(found)}, {checks}{contention_text(found)}")


def contention_text(found: dict) -> str:
    """Return `, CONTENDED (23% of CPU used by other processes)` for a contended run, else ""."""
    if not found.get("contended"):
        return ""
    return f", CONTENDED ({round(100 * found['other_cpu_share'])}% of CPU used by other processes)"


def target_text(found: dict) -> str:
    """Return what the test aimed at, in the scenario's own terms and units, and whether it was given or timed.

    Offline's target_qps is the throughput LoadGen expects (it sizes the run from it), not a
    goal; Server has a QPS and a latency bound; the streams an expected latency (LoadGen also
    prints a target_qps for them, its inverse: not shown).
    """
    summary, timed = found.get("summary", {}), found.get("calibrated") or {}
    scenario, latency = found.get("scenario"), summary.get("target_latency (ns)")
    if scenario in ("SingleStream", "MultiStream"):  # the summary's target_latency is the Server bound's field
        latency = found.get("expected_latency_ns")

    def how(key: str) -> str:
        return "timed on this machine" if key in timed else "given"

    if scenario == "Offline" and "target_qps" in summary:
        return f"expected {summary['target_qps']} samples/s ({how('target_qps')}; LoadGen sizes the run from it)"
    if scenario == "Server" and "target_qps" in summary:
        bound = f" within a {latency / 1e6:g} ms bound ({how('target_latency')})" if latency is not None else ""
        return f"target {summary['target_qps']} QPS ({how('target_qps')}){bound}"
    if latency is not None:
        return f"expected latency {latency / 1e6:g} ms ({how('target_latency')})"
    return "unknown"


def latency_p99_ns(entry: Entry) -> float:
    """Return the 99th percentile latency in ns of a performance run (any scenario)."""
    return performance_results(entry)["summary"]["99.00 percentile latency (ns)"]


def result_valid(entry: Entry) -> bool:
    """Return whether LoadGen judged the result VALID (an answer, not an error: `axq` exits 0 on false)."""
    return bool(entry.results.get("result_valid"))


def summary(entry: Entry) -> dict:
    """Return every parsed field of mlperf_log_summary.txt."""
    return dict(entry.results.get("summary", {}))


def compliance_result(entry: Entry) -> str:
    """Return PASS or FAIL: the verdict of this compliance run's verification."""
    return str(compliance(entry)["result"])


def compliance(entry: Entry) -> dict:
    """Return the compliance verification: test, result, details, the reference runs' names."""
    if "compliance" not in entry.results:
        raise GetterError("no compliance result: this run had no compliance test; query with "
                            "loadgen_mode=PerformanceOnly,loadgen_compliance_test=TEST01 (or TEST04)")
    return dict(entry.results["compliance"])


def accuracy_results(entry: Entry) -> dict[str, Any]:
    """Return the results of an AccuracyOnly run, or raise GetterError for another mode or random weights."""
    if "accuracy" not in entry.results:
        raise GetterError("no accuracy in a loadgen_mode=PerformanceOnly run; query with loadgen_mode=AccuracyOnly")
    if entry.results.get("random_weights"):
        name = entry.params.get("model_name")
        raise GetterError(f"no accuracy: model_name={name} ran with random weights (no weights_path), which "
                          f"are for performance runs only; pass weights_path=FILE (a {name} state_dict)")
    return entry.results


def performance_results(entry: Entry) -> dict[str, Any]:
    """Return the results of a PerformanceOnly run, or raise GetterError for another mode."""
    if "performance" not in entry.results:
        raise GetterError("no performance figure in a loadgen_mode=AccuracyOnly run (LoadGen does not "
                            "time accuracy runs); query with loadgen_mode=PerformanceOnly")
    return entry.results


def performance_unit(entry: Entry) -> str:
    """Return the unit of `performance`: samples/s, or ns for the streams' latencies."""
    return str(performance_results(entry)["unit"])


def latency_bound_ms(entry: Entry) -> float:
    """Return the Server run's latency bound in ms (the scenario that has one), for plots."""
    bound = (entry.results.get("summary") or {}).get("target_latency (ns)")
    if entry.params.get("loadgen_scenario") != "Server" or not isinstance(bound, (int, float)):
        raise GetterError(f"entry `{entry.name}` is no Server run: it has no latency bound")
    return bound / 1e6


def latency_breakdown(entry: Entry) -> dict:
    """Return where the run's time went per sample: queue, inference, response, end to end (ms), harness share.

    Each part has mean, p50, p90 and p99; the parts' means sum to the end-to-end mean.
    `loadgen_mean_ms` is LoadGen's own mean latency (performance runs), `harness_share`
    the SUT's time spent on batches other than inference (split into `loadgen_call_share`,
    the QuerySamplesComplete call, and `harness_own_share`, the rest), `harness_us_per_batch`
    that per batch. The raw times are in the entry's latency_breakdown.npz (axq_mlperf.breakdown).
    """
    found = entry.results.get("latency_breakdown")
    if not found:
        raise GetterError(f"entry `{entry.name}` has no latency breakdown (built before recipe version 9); "
                          "remove it and query again")
    return dict(found)


def profile_files(entry: Entry) -> list[str]:
    """Return the paths of the runtime's profile of the run (profile=true)."""
    if "profile" not in entry.results:
        raise GetterError(f"entry `{entry.name}` was not profiled; query with profile=true")
    return [str(entry.path / name) for name in entry.results["profile"]]
