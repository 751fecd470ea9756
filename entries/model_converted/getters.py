"""Getters of a converted or quantized model: the accuracy check its build recorded (int8 only).

On the cached-query path: imports only axq.errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from axq.errors import GetterError

if TYPE_CHECKING:
    from axq.entry import Entry


def fp32_accuracy(entry: Entry) -> float:
    """Return the fp32 model's top-1 accuracy (percent) on the held-out check set."""
    return float(checked(entry)["fp32_accuracy"])


def int8_accuracy(entry: Entry) -> float:
    """Return the int8 model's top-1 accuracy (percent) on the held-out check set."""
    return float(checked(entry)["int8_accuracy"])


def accuracy_ratio(entry: Entry) -> float:
    """Return the share of the fp32 accuracy the int8 model keeps."""
    return float(checked(entry)["accuracy_ratio"])


def checked(entry: Entry) -> dict:
    """Return the results of an int8 model, or raise GetterError for an fp32 conversion."""
    if "int8_accuracy" not in entry.results:
        raise GetterError(f"{entry.name} is an fp32 conversion: no accuracy check (query precision=int8)")
    return entry.results
