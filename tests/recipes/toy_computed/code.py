"""Record which machine measured: the default is computed once a process (from AXQ_TEST_MACHINE here)."""

import os


def fingerprint():
    return os.environ.get("AXQ_TEST_MACHINE", "machine-a")


def build(ctx):
    return {"machine": ctx.params["machine"]}


def where(entry):
    return entry.results["machine"]
