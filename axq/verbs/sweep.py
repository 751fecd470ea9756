"""Run many points: `sweep` (a table of getters) and `explore` (accuracy against performance).

Both check the files they will write (`--csv`, `--plot`) before the first point runs, run
their points with the executor `--on` names (axq/executor.py: here, or on a Ray cluster),
and print what they found even when Ctrl-C stopped them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from axq.answer import emit
from axq.errors import UsageError
from axq.verbs.command import Call, Option

if TYPE_CHECKING:
    from axq.executor import Executor

ON_RAY = Option("--on", "run the points on a Ray cluster: `ray` (RAY_ADDRESS, else a local Ray) or "
                "`ray://HOST:PORT`", "ray|ray://HOST:PORT")
OUTPUTS = ("--csv", "--plot")


def sweep(call: Call) -> int:
    """Run a sweep, print its table, write CSV/PNG; exit 1 if a point failed, 130 if interrupted."""
    from axq import sweeps
    from axq.executor import SweepInterrupted
    from axq.table import failed

    getters = call.stages[0][1][0].split(",")
    executor = executor_of(call.options.get("--on"))
    _check_outputs(call)
    try:
        rows = sweeps.sweep(call.query, getters, call.parsed_overrides(), work_collection=call.work_collection,
                            reporter=call.reporter(), executor=executor)
        code = 1 if failed(rows) else 0
    except SweepInterrupted as stop:
        rows, code = stop.rows, 130
        print(f"axq: {stop}", file=sys.stderr)
    _sweep_outputs(rows, getters, call)
    return code


def executor_of(on: str | None) -> Executor:
    """Return the executor `--on` names: none -> here, one point after another; `ray`, `ray://HOST:PORT` -> Ray."""
    from axq.executor import Sequential

    if on is None:
        return Sequential()
    from axq.cluster import Ray, address_of

    return Ray(address_of(on))


def _check_outputs(call: Call) -> None:
    """Check every file the line asks to write before anything runs (exit 1, one line)."""
    from axq.table import check_output

    for option in OUTPUTS:
        if option in call.options:
            check_output(call.options[option], option)


def _sweep_outputs(rows: list[dict], getters: list[str], call: Call) -> None:
    """Print the sweep table (or JSON) and write the files asked for."""
    from axq import plots, sweeps
    from axq.query import parse
    from axq.table import format_table, with_units, write_csv

    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(with_units(rows, sweeps.rows_units(rows, call.work_collection))))
    if "--csv" in call.options:
        write_csv(rows, call.options["--csv"])
    if "--plot" in call.options and rows:
        swept = sweeps.swept_keys(parse(call.query))
        notes = sweeps.rows_notes(rows, call.work_collection)
        plots.plot_sweep(rows, swept, getters, call.options["--plot"], call.query, notes)


def explore(call: Call) -> int:
    """Score every configuration of a grid; print the table and the best; exit 1 if one failed, 130 if stopped."""
    from axq import exploration
    from axq.executor import SweepInterrupted
    from axq.table import failed

    executor = executor_of(call.options.get("--on"))
    target = _target(call)
    _check_outputs(call)
    try:
        rows = exploration.explore(call.query, call.parsed_overrides(), target=target,
                                   work_collection=call.work_collection, reporter=call.reporter(), executor=executor)
        code = 1 if failed(rows) else 0
    except SweepInterrupted as stop:
        rows, code = stop.rows, 130
        print(f"axq: {stop}", file=sys.stderr)
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
    from axq import exploration, plots
    from axq.query import parse
    from axq.sweeps import swept_keys
    from axq.table import format_table, write_csv

    swept = swept_keys(parse(call.query))
    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(exploration.table_rows(rows, swept)))
        print("\n".join(exploration.summary(rows, swept)))
    if "--csv" in call.options:
        write_csv(rows, call.options["--csv"])
    if "--plot" in call.options and rows:
        plots.plot_explore(rows, call.options["--plot"], call.query, exploration.describe(rows, call.work_collection))
