"""Write a file into the entry: as a model is saved (torch.save) or as data is (Python writes)."""


def build(ctx):
    if ctx.params["input_path"]:
        with open(ctx.params["input_path"], encoding="utf-8") as handle:
            ctx.log(f"read {len(handle.read())} characters")
    size = ctx.params["megabytes"] << 20
    if ctx.params["writer"] == "torch":
        import torch

        torch.save(torch.zeros(size // 4, dtype=torch.float32), ctx.path / "model.pt")
    else:
        with open(ctx.path / "data.bin", "wb") as handle:
            for _ in range(ctx.params["megabytes"]):
                handle.write(b"x" * (1 << 20))
    ctx.log(f"wrote {ctx.params['megabytes']} MB")
    return {"megabytes": ctx.params["megabytes"]}
