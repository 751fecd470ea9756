"""Read LoadGen's mlperf_log_summary.txt and mlperf_log_detail.txt: the one parser of each.

The summary is `key : value` text. Early-stopping lines are `* `-bulleted
(` * Early stopping 90th percentile estimate: 651463`): the bullet is dropped and the line
kept, like any other field. Values that are numbers become numbers. The detail log is one
`:::MLLOG {json}` record a line. Light (json only): getters may use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axq_mlperf.scenarios import CHECKS, DETAIL_METRIC

MLLOG = ":::MLLOG "
SUMMARY, DETAIL, ACCURACY = "mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"


def parse_summary(text: str) -> dict[str, Any]:
    """Return the summary's `key : value` fields (bullets dropped, numbers as numbers); first one wins."""
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        key = key.strip().removeprefix("* ").strip()
        if colon and key and value.strip():
            fields.setdefault(key, to_number(value.strip()))
    return fields


def read_summary(directory: Path) -> dict[str, Any]:
    """Return the parsed mlperf_log_summary.txt of a run directory."""
    return parse_summary((Path(directory) / SUMMARY).read_text(encoding="utf-8"))


def to_number(text: str) -> Any:
    """Return text as an int or float when it is one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def summary_value(summary: dict[str, Any], prefix: str) -> Any:
    """Return the value of the first summary key starting with `prefix`, or None."""
    return next((value for key, value in summary.items() if key.startswith(prefix)), None)


def invalid_reasons(text: str) -> list[str]:
    """Return LoadGen's reasons for an INVALID result: its unmet checks and its recommendations."""
    lines = [line.strip() for line in text.splitlines()
             if any(check in line for check in CHECKS.values()) and line.rstrip().endswith("NO")]
    if "Recommendations:" in text:
        block = text.split("Recommendations:", 1)[1].split("=====", 1)[0]
        lines += [line.strip(" *") for line in block.splitlines() if line.strip().startswith("*")]
    return lines


def parse_detail(path: Path) -> dict[str, Any]:
    """Return the detail log's records as {key: value} (the last value of a key wins), and `_error_count`."""
    records: dict[str, Any] = {}
    errors = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(MLLOG):
            record = json.loads(line[len(MLLOG):])
            records[record["key"]] = record["value"]
            errors += record.get("metadata", {}).get("is_error", False) is True
    records["_error_count"] = errors
    return records


def read_detail(directory: Path) -> dict[str, Any]:
    """Return the parsed mlperf_log_detail.txt of a run directory."""
    return parse_detail(Path(directory) / DETAIL)


def detail_scenario(detail: dict[str, Any]) -> str:
    """Return the scenario a detail log ran, without spaces (`SingleStream`)."""
    return str(detail["effective_scenario"]).replace(" ", "")


def detail_metric(detail: dict[str, Any]) -> float:
    """Return the scenario's headline number from a detail log."""
    return float(detail[DETAIL_METRIC[detail_scenario(detail)]])


def detail_valid(detail: dict[str, Any]) -> bool:
    """Return whether LoadGen judged the run VALID."""
    return detail.get("result_validity") == "VALID"
