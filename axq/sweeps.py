"""Run every point of a sweep query, reusing cached points, and tabulate getter values.

`k:=a:b:c` (and ranges, see axq/query.py) stands for several values of one parameter;
several swept parameters form their product. Each point is an ordinary `byquery`. A point
whose build fails becomes a row with the reason and its log; the others still run. An
entry marked invalid by its build (an INVALID LoadGen run, say) is a result, not a failure.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from axq.build import Builder, log_path_of
from axq.entry import Entry
from axq.errors import AxqError, Interrupted, ManifestError, UsageError, did_you_mean
from axq.progress import Reporter
from axq.query import Query, parse

Row = dict[str, Any]


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep; carries the rows finished so far."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        super().__init__("interrupted")


def swept_keys(query: Query) -> list[str]:
    """Return the swept parameter names, in the order typed."""
    return [c.key for c in query.conditions if c.op == "sweep"]


def _point_row(query: Query, keys: list[str]) -> Row:
    """Start a row with the point's swept values."""
    return {k: query.assignments[k] for k in keys}


def check_points(points: list[Query], overrides: dict[str, Any] | None, work_collection: Any) -> None:
    """Resolve every point first: a bad value anywhere fails the sweep before a point runs."""
    from axq.resolve import Scope, resolve
    from axq.store import Store

    scope = Scope.of(Store(work_collection))
    for point in points:
        resolve(point, overrides, scope)


def run_point(point: Query, swept: list[str], getters: list[str], overrides: dict[str, Any] | None,
              work_collection: Any, reporter: Reporter) -> Row:
    """Build (or reuse) one point and read its getters; a failure becomes the row's error."""
    from axq.store import Store

    row = _point_row(point, swept)
    try:
        entry = Builder(Store(work_collection), reporter).byquery(point, overrides)
        known = entry.keys()
        unknown = [key for key in getters if key not in known]
        if unknown:  # the same for every point: stop rather than fill a table with errors
            raise UsageError(f"entry `{entry.name}` has no getter `{unknown[0]}`" + did_you_mean(unknown[0], known))
        row.update({key: entry.get(key) for key in getters})
        row.update(bound_values(entry, getters))
        row.update(valid=entry.invalid_reason is None, error=None, entry=entry.name)
    except (KeyboardInterrupt, Interrupted, UsageError):
        raise
    except Exception as error:  # a real failure of this point: report it, keep sweeping
        if not isinstance(error, AxqError) and not log_path_of(error):
            raise  # a bug outside any build: not a sweep result
        row.update({key: None for key in getters})
        log = log_path_of(error)
        message = str(error).splitlines()[0].replace(f"; log: {log}", "")
        row.update(valid=None, error=message, log=log, entry=None)
    return row


def sweep_arguments(query: str | Query, getters: list[str] | str) -> tuple[Query, list[str]]:
    """Parse a sweep's query and getters (`a,b` or a list); raise UsageError if it sweeps nothing."""
    query = parse(query) if isinstance(query, str) else query
    getters = [g for g in getters.split(",") if g] if isinstance(getters, str) else getters
    if not query.is_sweep:
        raise UsageError(f"`{query}` sweeps nothing: use `k:=a:b:c` for at least one parameter")
    return query, getters


def sweep(
    query: str | Query,
    getters: list[str] | str,
    overrides: dict[str, Any] | None = None,
    *,
    work_collection: str | os.PathLike | None = None,
    reporter: Reporter | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run every point of a sweep and return one row per point (swept values, getters, validity)."""
    query, getters = sweep_arguments(query, getters)
    reporter = reporter or Reporter()
    swept, points, rows = swept_keys(query), query.expand(), []
    check_points(points, overrides, work_collection)
    for number, point in enumerate(points, 1):
        reporter.log(f"sweep point {number}/{len(points)}: " + ",".join(str(c) for c in point.conditions
                                                                           if c.key in swept))
        try:
            rows.append(run_point(point, swept, getters, overrides, work_collection, reporter))
        except (KeyboardInterrupt, Interrupted):
            raise SweepInterrupted(rows) from None
        if on_row:
            on_row(rows[-1])
    return rows


# -- what a recipe says about its getters ------------------------------------------------------


@dataclass(frozen=True)
class Notes:
    """What a recipe says about its getters: their units and which getter bounds which."""

    units: dict[str, str] = field(default_factory=dict)
    bounds: dict[str, str] = field(default_factory=dict)


def notes_of(entry: Entry) -> Notes:
    """Read the units and bounds that the entry's recipe declares now (units read from the entry)."""
    from axq.locations import RECIPE_FILE
    from axq.store import read_text

    declared = json.loads(read_text(os.path.join(entry.recipe_dir(), RECIPE_FILE)) or "{}")
    units = {g: _unit(entry, g, spec) for g, spec in declared.get("units", {}).items()}
    return Notes({g: u for g, u in units.items() if u}, dict(declared.get("bounds", {})))


def _unit(entry: Entry, getter: str, spec: Any) -> str | None:
    """Return a getter's unit: the text declared, or what the declared unit getter says of this entry."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and set(spec) == {"getter"}:
        return _value(entry, spec["getter"])
    raise ManifestError(entry.manifest["recipe"], f"units.{getter}", 'expected a unit or {"getter": NAME}')


def _value(entry: Entry, key: str) -> Any:
    """Return a getter's value, or None if the entry cannot answer it."""
    try:
        return entry.get(key)
    except AxqError:
        return None


def bound_values(entry: Entry, getters: list[str]) -> Row:
    """Return the bounds the recipe declares for these getters, read from the entry."""
    bounds = notes_of(entry).bounds
    return {bounds[g]: _value(entry, bounds[g]) for g in getters if g in bounds and bounds[g] not in getters}


def rows_notes(rows: list[Row], work_collection: Any = None, key: str = "entry") -> Notes:
    """Return the notes of the recipe behind the first row with an entry (none: no notes)."""
    from axq.store import Store

    names = [row[key] for row in rows if row.get(key)]
    return notes_of(Entry.load(Store(work_collection), names[0])) if names else Notes()


# -- output ------------------------------------------------------------------------------------


def write_csv(rows: list[Row], path: str) -> None:
    """Write rows as CSV with a header."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def numeric(value: Any) -> bool:
    """Say whether a value is a number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TIME_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}  # factor to ms


@dataclass(frozen=True)
class Scale:
    """How a getter's values are shown: multiplied by `factor`, in `unit`, on a log axis or not."""

    factor: float = 1.0
    unit: str | None = None
    log: bool = False

    @classmethod
    def of(cls, unit: str | None) -> Scale:
        """Show times in ms on a log axis, anything else as it is."""
        if unit in TIME_UNITS:
            return cls(TIME_UNITS[unit], "ms", True)
        return cls(1.0, unit)

    def label(self, name: str) -> str:
        """Return an axis label: `latency_p99_ns (ms)`."""
        return f"{name} ({self.unit})" if self.unit else name


def tick_text(value: Any) -> str:
    """Return a swept value as its tick label: `1000`, `0.5`, `fp32`."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    from axq.query import format_value

    return format_value(value)


def set_ticks(axis: Any, values: list[Any], at: dict[Any, float] | None = None, most: int = 12) -> None:
    """Put ticks at the values themselves (every k-th one if many), labelled as swept, nothing in between."""
    from matplotlib.ticker import NullFormatter, NullLocator

    shown = values[:: -(-len(values) // most)]
    axis.set_ticks([at[v] if at else v for v in shown], [tick_text(v) for v in shown])
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def plain_numbers(ax: Any, which: str, log: bool) -> None:
    """Label axis `which` ("x" or "y") with plain numbers (no offset, no powers of ten), log scale if asked.

    Call it once the data is drawn: on a log axis the ticks depend on how many decades it spans
    (every digit within one, 1-2-5 within three, the powers of ten beyond).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

    axis = getattr(ax, f"{which}axis")
    if not log:
        plain = ScalarFormatter(useOffset=False)
        plain.set_scientific(False)
        axis.set_major_formatter(plain)
        return
    getattr(ax, f"set_{which}scale")("log")
    low, high = sorted(getattr(ax, f"get_{which}lim")())
    decades = math.log10(high / low) if low > 0 else 99
    subs = tuple(range(1, 10)) if decades <= 1 else (1, 2, 5) if decades <= 3 else (1,)
    axis.set_major_locator(LogLocator(10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(LogLocator(10, subs=tuple(range(2, 10))))
    axis.set_minor_formatter(NullFormatter())


def spans_decades(values: list[float]) -> bool:
    """Say whether positive values spread wide enough (8x) to read best on a log axis."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 8


def titles(fig: Any, top: Any, short: str, query: str) -> None:
    """Give a figure a short title, with the full query in small print below it."""
    import textwrap

    fig.suptitle(short, fontsize=11)
    if query:
        top.set_title(textwrap.fill(query, 110), fontsize=7, color="dimgray")


def pyplot() -> Any:
    """Return matplotlib's pyplot, drawing off screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(rows: list[Row], x: str, getters: list[str], query: str = "", notes: Notes | None = None) -> Any:
    """Draw each getter against the swept parameter x, one panel each; bounds as lines on their panels."""
    notes = notes or Notes()
    bounds = set(notes.bounds.values())
    shown = [g for g in getters if g not in bounds and any(numeric(r.get(g)) for r in rows)]
    if not shown:
        raise UsageError("nothing to plot: at least one getter must be a number")
    fig, axes = pyplot().subplots(len(shown), 1, figsize=(7, 1.2 + 3 * len(shown)), squeeze=False,
                                  sharex=True, layout="constrained")
    at = _positions(rows, x)
    for ax, getter in zip(axes[:, 0], shown, strict=True):
        _plot_one(ax, [(at[r.get(x)], r) for r in rows], getter, notes)
    _x_axis(axes[-1, 0], at, x)
    titles(fig, axes[0, 0], f"{', '.join(shown)} against {x}", query)
    return fig


def plot(rows: list[Row], x: str, getters: list[str], path: str, query: str = "", notes: Notes | None = None) -> None:
    """Plot each getter against the swept parameter x into a PNG (see `figure`)."""
    fig = figure(rows, x, getters, query, notes)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def _positions(rows: list[Row], x: str) -> dict[Any, float]:
    """Place each swept value on the x axis: numbers where they are, other values in their order."""
    values: list[Any] = list(dict.fromkeys(r.get(x) for r in rows))
    if all(numeric(v) for v in values):
        return {v: float(v) for v in values}
    return {v: float(i) for i, v in enumerate(values)}


def _x_axis(ax: Any, at: dict[Any, float], x: str) -> None:
    """Label the x axis with the swept values, on a log scale when numbers span decades."""
    if all(numeric(v) for v in at) and spans_decades(list(at.values())):
        ax.set_xscale("log")
    set_ticks(ax.xaxis, sorted(at, key=at.__getitem__), at)
    ax.set_xlabel(x)


def _plot_one(ax: Any, placed: list[tuple[float, Row]], getter: str, notes: Notes) -> None:
    """Plot one getter: a line through every point, valid as dots, invalid as crosses, its bound dashed."""
    scale = Scale.of(notes.units.get(getter))
    points = sorted((x, row[getter] * scale.factor, row.get("valid")) for x, row in placed if numeric(row.get(getter)))
    ax.plot([p[0] for p in points], [p[1] for p in points], color="tab:blue", linewidth=1)
    for marker, colour, keep, label in (("o", "tab:blue", True, "valid"), ("x", "tab:red", False, "invalid")):
        chosen = [p for p in points if bool(p[2]) is keep]
        if chosen:
            ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], marker=marker, color=colour,
                       label=label, zorder=3)
    if getter in notes.bounds:
        draw_bound(ax, placed, notes.bounds[getter], scale, Scale.of(notes.units.get(notes.bounds[getter])))
    plain_numbers(ax, "y", scale.log)
    ax.set_ylabel(scale.label(getter))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def draw_bound(ax: Any, placed: list[tuple[float, Row]], bound: str, scale: Scale, own: Scale) -> None:
    """Draw a getter's bound (carried by the rows as column `bound`) as a dashed line, in the getter's unit."""
    if own.unit != scale.unit:
        return  # a bound in another unit than its getter: nothing honest to draw
    points = sorted((x, row[bound] * own.factor) for x, row in placed if numeric(row.get(bound)))
    if not points:
        return
    values = {y for _, y in points}
    label = f"{bound}: {tick_text(points[0][1])} {scale.unit or ''}".rstrip() if len(values) == 1 else bound
    if len(values) == 1:
        ax.axhline(points[0][1], color="tab:orange", linestyle="--", linewidth=1.2, label=label)
    else:
        ax.plot([p[0] for p in points], [p[1] for p in points], color="tab:orange", linestyle="--", label=label)
