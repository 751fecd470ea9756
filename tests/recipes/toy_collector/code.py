"""Fetch number entries 1..upto during the build and sum them."""


def build(ctx):
    values = [ctx.byquery(f"number,value={v}").get("stored") for v in range(1, ctx.params["upto"] + 1)]
    ctx.log(f"collected {values}")
    return {"sum": sum(values)}


def total(entry):
    return entry.results["sum"]
