"""Sum a dependency's number with an offset."""


def build(ctx):
    a = ctx.deps["a"].get("stored")
    (ctx.path / "total.txt").write_text(str(a + ctx.params["offset"]))


def total(entry):
    return int((entry.path / "total.txt").read_text())
