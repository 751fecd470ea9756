"""Write `value` into number.txt; getters read it back."""


def build(ctx):
    (ctx.path / "number.txt").write_text(str(ctx.params["value"]))
    ctx.log(f"wrote {ctx.params['value']}")
    return {"squared": ctx.params["value"] ** 2}


def stored(entry):
    return int((entry.path / "number.txt").read_text())


def doubled(entry):
    return 2 * stored(entry)
