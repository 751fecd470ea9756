"""Getters of a peak search: values read from its results (on the cached-query path: nothing heavy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import Entry

Probe = dict[str, Any]


def performance(entry: Entry) -> float | None:
    """Return the peak: the highest VALID target QPS (Server) or samples per second (Offline)."""
    return entry.results.get("performance")


def peak_samples_per_second(entry: Entry) -> float | None:
    """Return the throughput LoadGen measured at the peak probe."""
    return entry.results.get("peak_samples_per_second")


def probes(entry: Entry) -> list[Probe]:
    """Return every probe (qps, valid, performance, entry), lowest target first."""
    return list(entry.results.get("probes", []))


def result_valid(entry: Entry) -> bool:
    """Return whether a VALID peak was found."""
    return bool(entry.results.get("valid"))


def peak_report(entry: Entry) -> str:
    """Return the peak, its throughput, its latency bound, what bounds it and the probe count on one line."""
    return report_line(entry.results)


def report_line(found: dict) -> str:
    """Return peak_report's line from a search's results."""
    count = len(found.get("probes", []))
    if not found.get("valid"):
        return f"no peak: {found.get('invalid_reason')} ({count} probes)"
    if found["scenario"] == "Offline":
        return f"Offline peak: {found['performance']} samples/s (1 run, {found['peak_entry']})"
    if found.get("at_cap") or found.get("first_invalid_qps") is None:
        return (f"Server peak: at least {found['performance']} QPS VALID ({found['peak_samples_per_second']} "
                f"samples/s){latency_text(found)}: a lower bound, not a peak (the cap peak_max_qps="
                f"{found['peak_max_qps']} was reached; raise it to search higher); {count} probes")
    return (f"Server peak: {found['performance']} QPS VALID ({found['peak_samples_per_second']} samples/s)"
            f"{latency_text(found)}, {found['first_invalid_qps']} QPS INVALID; {count} probes")


def latency_text(found: dict) -> str:
    """Say at which latency bound the peak was found, and the range of the probes' bounds if they differ."""
    bound, bounds = found.get("peak_bound_ms"), found.get("latency_bounds_ms") or []
    if bound is None:
        return ""
    text = f" at a {bound:g} ms latency bound"
    if len(bounds) > 1:
        text += f" (the probes' bounds, timed in each run: {bounds[0]:g} to {bounds[-1]:g} ms)"
    return text


def performance_report(entry: Entry) -> str:
    """Return the same line as peak_report (the name other loadgen_output entries use)."""
    return peak_report(entry)
