"""Run many points: `sweep` (a table of getters) and `explore` (accuracy against performance)."""

from __future__ import annotations

import functools
import sys

from axq.answer import emit
from axq.errors import UsageError
from axq.verbs.command import Call, Option


def sweep(call: Call) -> int:
    """Run a sweep, print its table, write CSV/PNG; exit 1 if a point failed, 130 if interrupted."""
    from axq import sweeps as sweeping

    getters = call.stages[0][1][0].split(",")
    try:
        run = sweeping.sweep
        if "--on" in call.options:  # on a Ray cluster (axq/cluster.py)
            from axq import cluster

            run = functools.partial(cluster.sweep, address=cluster.address_of(call.options["--on"]))
        rows = run(call.query, getters, call.parsed_overrides(), work_collection=call.work_collection,
                   reporter=call.reporter())
        code = 1 if any(r.get("error") for r in rows) else 0
    except sweeping.SweepInterrupted as stop:
        rows, code = stop.rows, 130
        print(f"axq: sweep interrupted after {len(rows)} points; run it again to resume", file=sys.stderr)
    _sweep_outputs(rows, getters, call)
    return code


def _sweep_outputs(rows: list[dict], getters: list[str], call: Call) -> None:
    """Print the sweep table (or JSON) and write the files asked for."""
    from axq import sweeps as sweeping
    from axq.query import parse
    from axq.table import format_table

    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(rows))
    if "--csv" in call.options:
        sweeping.write_csv(rows, call.options["--csv"])
    if "--plot" in call.options and rows:
        x = sweeping.swept_keys(parse(call.query))[0]
        notes = sweeping.rows_notes(rows, call.work_collection)
        sweeping.plot(rows, x, getters, call.options["--plot"], call.query, notes)


def explore(call: Call) -> int:
    """Score every configuration of a grid; print the table and the best; exit 1 if one failed, 130 if stopped."""
    from axq import exploration as exploring
    from axq import sweeps as sweeping

    try:
        run = exploring.explore
        if "--on" in call.options:  # on a Ray cluster (axq/cluster.py)
            from axq import cluster

            run = functools.partial(cluster.explore, address=cluster.address_of(call.options["--on"]))
        rows = run(call.query, call.parsed_overrides(), target=_target(call), work_collection=call.work_collection,
                   reporter=call.reporter())
        code = 1 if any(r.get("error") for r in rows) else 0
    except sweeping.SweepInterrupted as stop:
        rows, code = stop.rows, 130
        done = f"{len(rows)} configuration" + ("" if len(rows) == 1 else "s")
        print(f"axq: explore interrupted after {done}; run it again to resume", file=sys.stderr)
    _explore_outputs(rows, call)
    return code


def _target(call: Call) -> float | None:
    """Return the --target share of the reference's accuracy (a number in (0, 1]), if given."""
    text = call.options.get("--target")
    if text is None:
        return None
    try:
        share = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise UsageError(f"--target {text}: expected a share of the reference's accuracy, e.g. 0.99 or 99%")
    return share


def _explore_outputs(rows: list[dict], call: Call) -> None:
    """Print the exploration's table and best configuration (or JSON); write the files asked for."""
    from axq import exploration as exploring
    from axq import sweeps as sweeping
    from axq.query import parse
    from axq.table import format_table

    swept = sweeping.swept_keys(parse(call.query))
    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(exploring.table_rows(rows, swept)))
        print("\n".join(exploring.summary(rows, swept)))
    if "--csv" in call.options:
        sweeping.write_csv(rows, call.options["--csv"])
    if "--plot" in call.options and rows:
        exploring.plot(rows, call.options["--plot"], call.query, exploring.describe(rows, call.work_collection))


ON_RAY = Option("--on", "run the points on a Ray cluster: `ray` (RAY_ADDRESS, else a local Ray) or "
                "`ray://HOST:PORT`", "ray|ray://HOST:PORT")
