"""Record the build, announce it through the `started` FIFO, wait on the `release` FIFO.

Tests open `started` for reading (returns once a build has started) and open `release`
for writing (lets the build finish), or kill the build while it waits.
"""

import os


def build(ctx):
    gate = ctx.params["gate_dir"]
    with open(os.path.join(gate, "builds.txt"), "a") as log:
        log.write(f"{os.getpid()}\n")
    (ctx.path / "partial.txt").write_text("half-built")
    with open(os.path.join(gate, "started"), "w") as started:
        started.write("started\n")
    with open(os.path.join(gate, "release")) as release:
        release.read()
    return {"released": True}
