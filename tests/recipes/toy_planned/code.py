"""Sum number entries 1..count: dependencies known from the parameters, so planned."""

from axq.errors import ParameterError


def planned_deps(params):
    deps = {f"n{value}": f"number,value={value}" for value in range(1, params["count"] + 1)}
    return {**deps, "again": "number,value=1"} if params["repeat"] else deps


def check(params):
    if params["count"] > params["limit"]:
        raise ParameterError("count", params["count"], f"must be at most limit={params['limit']}")


def check_deps(params, deps):
    too_big = sorted(dep["value"] for dep in deps.values() if params["top"] is not None
                     and dep["value"] > params["top"])
    if too_big:
        raise ParameterError("top", params["top"], f"is below the value of number {too_big[0]}")


def estimate(params):
    return 1.5


def build(ctx):
    return {"sum": sum(dep.get("stored") for name, dep in ctx.deps.items() if name != "again")}


def total(entry):
    return entry.results["sum"]
