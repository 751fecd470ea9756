"""Fail after writing a partial file."""

from axq.errors import BuildError


def build(ctx):
    (ctx.path / "partial.txt").write_text("half-built")
    ctx.log("about to fail")
    if ctx.params["kind"] == "disk_full":
        (ctx.path / "big.bin").symlink_to("/dev/full")
        with open(ctx.path / "big.bin", "wb") as handle:
            handle.write(b"x" * 1_000_000)
            handle.flush()
    if ctx.params["kind"] == "user":
        raise BuildError("the input data is missing: pass data_dir=...")
    raise RuntimeError("a bug in the recipe")
