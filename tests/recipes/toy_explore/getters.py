"""Getters: read the figures the build stored."""

from axq.errors import GetterError


def _result(entry, key):
    if key not in entry.results:
        raise GetterError(f"no `{key}` in a mode={entry.params['mode']} run")
    return entry.results[key]


def accuracy(entry):
    return _result(entry, "accuracy")


def performance(entry):
    return _result(entry, "performance")


def performance_unit(entry):
    return "ns" if entry.params["scenario"] == "latency" else "samples/s"


def latency_ns(entry):
    return _result(entry, "latency_ns")


def latency_bound_ms(entry):
    return _result(entry, "latency_bound_ms")


def built_ns(entry):
    return entry.results["built_ns"]
