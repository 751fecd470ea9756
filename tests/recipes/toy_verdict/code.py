"""Report `latency` as the figure; above `limit` the run is INVALID, with the reason a benchmark would give."""


def build(ctx):
    latency, limit = ctx.params["latency"], ctx.params["limit"]
    found = {"latency_ns": latency, "throughput": 1e9 / latency}
    if latency > limit:
        found.update(valid=False, invalid_reason=f"latency {latency} ns above the {limit} ns bound")
    return found


def latency_ns(entry):
    return entry.results["latency_ns"]


def throughput(entry):
    return entry.results["throughput"]
