"""Read LoadGen's mlperf_log_summary.txt and mlperf_log_detail.txt into plain dicts.

The detail log is one `:::MLLOG {json}` record a line; the summary is `key : value`
text. (entries/loadgen_program has its own reader; the two may merge later.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MLLOG = ":::MLLOG "

# The headline number of each scenario as the TEST01 performance check reads it from the
# detail log (compliance/TEST01/verify_performance.py: RESULT_FIELD).
DETAIL_METRIC = {
    "Offline": "result_samples_per_second",
    "SingleStream": "early_stopping_latency_ss",
    "MultiStream": "early_stopping_latency_ms",
    "Server": "result_completed_samples_per_sec",
}


def parse_detail(path: Path) -> dict[str, Any]:
    """Return the detail log's records as {key: value}, the last value of a key winning."""
    records: dict[str, Any] = {}
    errors = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(MLLOG):
            record = json.loads(line[len(MLLOG):])
            records[record["key"]] = record["value"]
            errors += record.get("metadata", {}).get("is_error", False) is True
    records["_error_count"] = errors
    return records


def parse_summary(path: Path) -> dict[str, str]:
    """Return the summary log's `key : value` lines as {key: value}, stripped of `* ` bullets."""
    fields: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().removeprefix("* ")
        if sep and key and value.strip():
            fields.setdefault(key, value.strip())
    return fields


def summary_value(summary: dict[str, str], prefix: str) -> str | None:
    """Return the value of the first summary key starting with `prefix`, or None."""
    for key, value in summary.items():
        if key.startswith(prefix):
            return value
    return None


def detail_scenario(detail: dict[str, Any]) -> str:
    """Return the scenario a detail log ran, without spaces (`SingleStream`)."""
    return str(detail["effective_scenario"]).replace(" ", "")


def detail_metric(detail: dict[str, Any]) -> float:
    """Return the scenario's headline number from a detail log."""
    return float(detail[DETAIL_METRIC[detail_scenario(detail)]])


def detail_valid(detail: dict[str, Any]) -> bool:
    """Return whether LoadGen judged the run VALID."""
    return detail.get("result_validity") == "VALID"
