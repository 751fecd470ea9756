"""Run every point of a sweep query, reusing cached points, and tabulate getter values.

`k:=a:b:c` (and ranges, see axq/query.py) stands for several values of one parameter;
several swept parameters form their product. Each point is an ordinary `byquery`. A point
whose build fails becomes a row with the reason and its log; the others still run. An
entry marked invalid by its build (an INVALID LoadGen run, say) is a result, not a failure.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from typing import Any

from axq.build import Builder, log_path_of
from axq.errors import AxqError, Interrupted, UsageError, did_you_mean
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
    query = parse(query) if isinstance(query, str) else query
    getters = [g for g in getters.split(",") if g] if isinstance(getters, str) else getters
    if not query.is_sweep:
        raise UsageError(f"`{query}` sweeps nothing: use `k:=a:b:c` for at least one parameter")
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


def write_csv(rows: list[Row], path: str) -> None:
    """Write rows as CSV with a header."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot(rows: list[Row], x: str, getters: list[str], path: str, title: str = "") -> None:
    """Draw each getter against the swept parameter x; invalid points as red crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [g for g in getters if any(_numeric(r.get(g)) for r in rows)]
    if not shown or not all(_numeric(r.get(x)) for r in rows):
        raise UsageError(f"nothing to plot: `{x}` and at least one getter must be numbers")
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 3.2 * len(shown)), squeeze=False, sharex=True)
    for ax, getter in zip(axes[:, 0], shown, strict=True):
        _plot_one(ax, rows, x, getter)
    axes[-1, 0].set_xlabel(x)
    import textwrap

    fig.suptitle(textwrap.fill(title, 100), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_one(ax: Any, rows: list[Row], x: str, getter: str) -> None:
    """Plot one getter: a line through every point, valid as dots, invalid as crosses."""
    points = sorted((r[x], r[getter], r.get("valid")) for r in rows if _numeric(r.get(getter)))
    ax.plot([p[0] for p in points], [p[1] for p in points], color="tab:blue", linewidth=1)
    for marker, colour, keep, label in (("o", "tab:blue", True, "valid"), ("x", "tab:red", False, "invalid")):
        chosen = [p for p in points if bool(p[2]) is keep]
        if chosen:
            ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], marker=marker, color=colour,
                       label=label, zorder=3)
    xs = [p[0] for p in points]
    if xs and min(xs) > 0 and max(xs) / min(xs) >= 8:
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylabel(getter)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
