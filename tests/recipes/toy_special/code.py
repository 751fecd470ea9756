"""Write a special number."""


def build(ctx):
    (ctx.path / "number.txt").write_text(str(-ctx.params["value"]))
