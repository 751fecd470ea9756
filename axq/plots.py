"""Draw rows as figures (matplotlib, off screen): a sweep's getters against its swept values, an exploration's front.

`sweep_figure`/`plot_sweep` draw one panel per getter against the first swept parameter,
one series per value of the others; `explore_figure`/`plot_explore` draw accuracy against
performance with the Pareto front. Tests read the figures' matplotlib objects; a person
reads the PNGs. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from axq.errors import UsageError
from axq.executor import Row
from axq.exploration import SCORE_COLUMNS, best, scored
from axq.sweeps import Notes
from axq.table import numeric

TIME_NS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}  # one of each, in ns
SHOWN_TIMES = ("ns", "µs", "ms", "s")


@dataclass(frozen=True)
class Scale:
    """How a getter's values are shown: multiplied by `factor`, in `unit`, on a log axis or not."""

    factor: float = 1.0
    unit: str | None = None
    log: bool = False
    source: str | None = None  # the unit the values come in

    @classmethod
    def of(cls, unit: str | None, values: list[Any] | None = None) -> Scale:
        """Show times on a log axis in the unit that puts the values' median between 1 and 1000; else as they are."""
        if unit not in TIME_NS:
            return cls(1.0, unit, False, unit)
        numbers = sorted(v * TIME_NS[unit] for v in values or [] if numeric(v) and v > 0)
        median = numbers[len(numbers) // 2] if numbers else TIME_NS["ms"]
        shown = next((u for u in reversed(SHOWN_TIMES) if median >= TIME_NS[u]), "ns")
        return cls(TIME_NS[unit] / TIME_NS[shown], shown, True, unit)

    def converts(self, other: Scale) -> float | None:
        """Return the factor that shows values in `other`'s source unit on this scale (None: other units)."""
        if self.unit in TIME_NS and other.source in TIME_NS:
            return TIME_NS[other.source] / TIME_NS[self.unit]
        return 1.0 if other.source == self.unit else None

    def label(self, name: str) -> str:
        """Return an axis label saying the unit shown once: `latency_p99 (ms)` for `latency_p99_ns`."""
        if self.source in TIME_NS and name.endswith("_" + str(self.source)):
            name = name[: -len(str(self.source)) - 1]  # the label says the unit shown, once
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


def plain_numbers(ax: Any, which: str, log: bool, margin: float = 0.06) -> None:
    """Label axis `which` ("x" or "y") with plain numbers (no offset, no powers of ten), log scale if asked.

    Call it once the data is drawn: on a log axis the ticks depend on how many decades it spans
    (round numbers evenly spaced within a factor of four, 1-2-3-5 within a decade, 1-2-5 within
    two, 1-3 within three, the powers of ten beyond), so that two to eight labels share an axis.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

    axis = getattr(ax, f"{which}axis")
    ax.margins(**{which: margin})  # no point on the frame
    if not log:
        plain = ScalarFormatter(useOffset=False)
        plain.set_scientific(False)
        axis.set_major_formatter(plain)
        return
    getattr(ax, f"set_{which}scale")("log")
    ax.autoscale_view()
    low, high = sorted(getattr(ax, f"get_{which}lim")())
    decades = math.log10(high / low) if low > 0 else 99
    if decades <= 0.6:  # less than a factor of four: evenly spaced round numbers, as on a linear axis
        axis.set_major_locator(MaxNLocator(6, steps=[1, 2, 2.5, 5, 10]))
    else:
        subs = (1, 2, 3, 5) if decades <= 1.2 else (1, 2, 5) if decades <= 2.2 else (1, 3) if decades <= 3.2 else (1,)
        axis.set_major_locator(LogLocator(10, subs=subs, numticks=9))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(LogLocator(10, subs=tuple(range(2, 10))))
    axis.set_minor_formatter(NullFormatter())


def spans_decades(values: list[float]) -> bool:
    """Say whether positive values spread wide enough (8x) to read best on a log axis."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 8


def titles(fig: Any, top: Any, short: str, query: str) -> None:
    """Give a figure a short title, with the full query in small print below it (broken after commas)."""
    fig.suptitle(short, fontsize=11)
    if query:
        top.set_title(wrap_query(query, 100), fontsize=7, color="dimgray")


def wrap_query(query: str, width: int) -> str:
    """Break a query into lines of at most `width` characters after its commas, never inside a condition."""
    lines = [""]
    for part in query.replace(" , ", ",").split(","):
        piece = part if not lines[-1] else "," + part
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines[-1] += ","
            lines.append(part)
        else:
            lines[-1] += piece
    return "\n".join(lines)


def pyplot() -> Any:
    """Return matplotlib's pyplot, drawing off screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sweep_figure(rows: list[Row], swept: list[str] | str, getters: list[str], query: str = "",
                 notes: Notes | None = None) -> Any:
    """Draw each getter against the first swept parameter, one panel each, one series per value of the others.

    Bounds are dashed lines on their getters' panels; INVALID points are red crosses.
    """
    swept = [swept] if isinstance(swept, str) else swept
    notes = notes or Notes()
    bounds = set(notes.bounds.values())
    shown = [g for g in getters if g not in bounds and any(numeric(r.get(g)) for r in rows)]
    if not shown:
        raise UsageError("nothing to plot: at least one getter must be a number")
    fig, axes = pyplot().subplots(len(shown), 1, figsize=(7, 1.4 + 3 * len(shown)), squeeze=False,
                                  sharex=True, layout="constrained")
    x, others = swept[0], swept[1:]
    at = _positions(rows, x)
    for ax, getter in zip(axes[:, 0], shown, strict=True):
        _plot_one(ax, rows, at, x, others, getter, notes)
    _x_axis(axes[-1, 0], at, x)
    against = f"{x}, one line per {', '.join(others)}" if others else x
    titles(fig, axes[0, 0], f"{', '.join(shown)} against {against}", query)
    return fig


def plot_sweep(rows: list[Row], swept: list[str] | str, getters: list[str], path: str, query: str = "",
               notes: Notes | None = None) -> None:
    """Plot each getter against the swept parameters into a PNG (see `sweep_figure`)."""
    fig = sweep_figure(rows, swept, getters, query, notes)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def _positions(rows: list[Row], x: str) -> dict[Any, float]:
    """Place each swept value on the x axis: numbers where they are, other values in their order."""
    values: list[Any] = list(dict.fromkeys(r.get(x) for r in rows))
    if all(numeric(v) for v in values):
        return {v: float(v) for v in values}
    return {v: float(i) for i, v in enumerate(values)}


def _x_axis(ax: Any, at: dict[Any, float], x: str) -> None:
    """Label the x axis with the swept values, on a log scale when numbers span decades; room for long labels."""
    values = sorted(at, key=at.__getitem__)
    if all(numeric(v) for v in at) and spans_decades(list(at.values())):
        ax.set_xscale("log")
    elif not all(numeric(v) for v in at):
        ax.set_xlim(-0.5, len(values) - 0.5)  # categories: half a slot each side, labels inside the axes
    set_ticks(ax.xaxis, values, at)
    if max(len(tick_text(v)) for v in values) * len(values) > 60:  # would run into each other
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    ax.set_xlabel(x)


def series(rows: list[Row], others: list[str]) -> dict[tuple[Any, ...], list[Row]]:
    """Group rows by their values of the other swept parameters, in the order they come."""
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in others), []).append(row)
    return groups


def _plot_one(ax: Any, rows: list[Row], at: dict[Any, float], x: str, others: list[str], getter: str,
              notes: Notes) -> None:
    """Plot one getter: a line per series (dots), INVALID points crossed in red, its bound dashed, a legend."""
    scale = Scale.of(notes.units.get(getter), [r.get(getter) for r in rows])
    invalid: list[tuple[float, float]] = []
    for index, (values, members) in enumerate(series(rows, others).items()):
        points = sorted((at[r.get(x)], r[getter] * scale.factor, r.get("valid")) for r in members
                        if numeric(r.get(getter)))
        name = ", ".join(tick_text(v) for v in values) or None  # the legend's title names the parameters
        ax.plot([p[0] for p in points], [p[1] for p in points], color=f"C{index % 10}", linewidth=1.2,
                marker="o", markersize=5, label=name)
        invalid += [(p[0], p[1]) for p in points if p[2] is False]
    if invalid:
        ax.scatter([p[0] for p in invalid], [p[1] for p in invalid], marker="x", color="tab:red", s=70,
                   linewidths=2, zorder=4, label="INVALID run")
    if getter in notes.bounds:
        groups = [[(at[r.get(x)], r) for r in members] for members in series(rows, others).values()]
        draw_bound(ax, groups, notes.bounds[getter], scale, Scale.of(notes.units.get(notes.bounds[getter])))
    figures = [r[getter] for r in rows if numeric(r.get(getter))]
    plain_numbers(ax, "y", scale.log or (min(figures) > 0 and max(figures) >= 100 * min(figures)))
    ax.set_ylabel(scale.label(getter))
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title=", ".join(others) or None, title_fontsize=8)


def draw_bound(ax: Any, groups: list[list[tuple[float, Row]]], bound: str, scale: Scale, own: Scale) -> None:
    """Draw a getter's bound (carried by the rows as column `bound`) dashed, in the getter's unit.

    One value for every row: a black line across, labelled with it. Else one dashed line per
    series, in its colour: a series' bound, not a zig-zag through all of them.
    """
    factor = scale.converts(own)
    if factor is None:
        return  # a bound in another unit than its getter: nothing honest to draw
    lines = [sorted((x, row[bound] * factor) for x, row in group if numeric(row.get(bound))) for group in groups]
    values = {y for line in lines for _, y in line}
    if len(values) == 1:
        value = values.pop()
        said = f"{tick_text(value / factor)} {own.source or ''}".rstrip()  # in the bound's own unit
        ax.axhline(value, color="black", linestyle="--", linewidth=1.2, label=f"{bound}: {said}")
        return
    label = f"{bound} (dashed)"
    for index, line in enumerate(lines):
        if line:
            colour = "black" if len(lines) == 1 else f"C{index % 10}"
            ax.plot([p[0] for p in line], [p[1] for p in line], color=colour, linestyle="--", linewidth=1, label=label)
            label = "_" + label  # once in the legend


# -- explorations --------------------------------------------------------------------------------


def plot_explore(rows: list[Row], path: str, query: str = "", notes: Any = None) -> None:
    """Plot accuracy against performance: every valid row, the front joined and highlighted."""
    fig = explore_figure(rows, query, notes)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def explore_figure(rows: list[Row], query: str = "", notes: Any = None) -> Any:
    """Draw the accuracy-vs-performance scatter (see `plot_explore`); return the figure."""
    shown = [r for r in rows if numeric(r["accuracy"]) and numeric(r["performance"])]
    if not shown:
        raise UsageError("nothing to plot: no configuration has both an accuracy and a performance figure")
    scale = Scale.of(shown[0]["unit"], [r["performance"] for r in shown])
    fig, ax = pyplot().subplots(figsize=(10, 5.5), layout="constrained")
    _scatter(ax, shown, scale)
    plain_numbers(ax, "x", scale.log, margin=0.12)  # room for the points' labels
    accuracy_unit = (notes.units.get("accuracy") if notes else None)
    ax.set_xlabel(scale.label("performance") + (" (lower is better)" if not shown[0]["higher_is_better"] else ""))
    ax.set_ylabel(f"accuracy ({accuracy_unit})" if accuracy_unit else "accuracy")
    _accuracy_range(ax, shown, _target_line(ax, shown), accuracy_unit)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    titles(fig, ax, "accuracy against performance", query)
    return fig


def _scatter(ax: Any, rows: list[Row], scale: Any) -> None:
    """Plot the rows: the front joined and green, below-target hollow, invalid as crosses, the best starred."""
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["performance"])
    ax.plot([r["performance"] * scale.factor for r in front], [r["accuracy"] for r in front], color="tab:green",
            linewidth=1.5, zorder=2)
    winners = [id(r) for r in best(rows)]
    styles = [("best at the target", lambda r: id(r) in winners, dict(color="gold", edgecolors="black",
                                                                       marker="*", s=260, zorder=4)),
              (FRONT, lambda r: r["pareto"] and r["meets_target"], dict(color="tab:green", s=60)),
              ("Pareto front, below the target", lambda r: r["pareto"] and not r["meets_target"],
               dict(facecolors="none", edgecolors="tab:green", linewidths=1.5, s=60)),
              ("meets the target", lambda r: scored(r) and not r["pareto"] and r["meets_target"],
               dict(color="tab:blue", s=40)),
              ("below the target", lambda r: scored(r) and not r["pareto"] and not r["meets_target"],
               dict(facecolors="none", edgecolors="tab:gray", s=40)),
              ("invalid run", lambda r: not r["valid"], dict(color="tab:red", marker="x", s=40))]
    for label, chosen, style in styles:
        picked = [r for r in rows if chosen(r)]
        if picked:
            ax.scatter([r["performance"] * scale.factor for r in picked], [r["accuracy"] for r in picked],
                       label=label, **{"zorder": 3, **style})
    for index, row in enumerate(sorted(rows, key=lambda r: (r["accuracy"], r["performance"]))):
        ax.annotate(_short(row), (row["performance"] * scale.factor, row["accuracy"]), fontsize=7,
                    xytext=(5, 5 if index % 2 == 0 else -11), textcoords="offset points")  # neighbours apart


def _legend(ax: Any) -> None:
    """Show the legend; the front's entry is its line with a dot, so it shows even where the best covers the dots."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    front = Line2D([], [], color="tab:green", linewidth=1.5, marker="o", markersize=7)
    ax.legend([front if label == FRONT else handle for handle, label in zip(handles, labels, strict=True)],
              labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the points, never on one


FRONT = "Pareto front"


def _short(row: Row) -> str:
    """Label a point with its swept values: `beta bf16 32`."""
    skip = set(SCORE_COLUMNS) | {"skipped", "node"}
    return " ".join(str(v) for k, v in row.items() if k not in skip)


def _target_line(ax: Any, rows: list[Row]) -> float | None:
    """Draw the accuracy target where every row shares one reference accuracy; return its height."""
    references = {(r["reference_accuracy"], r["target"]) for r in rows if numeric(r["reference_accuracy"])}
    if len(references) != 1:
        return None
    (reference, target), = references
    ax.axhline(reference * target, color="tab:orange", linestyle="--", linewidth=1,
               label=f"target: {target:.0%} of the reference ({reference * target:.4g})")
    return reference * target


def _accuracy_range(ax: Any, rows: list[Row], target: float | None, unit: str | None) -> None:
    """Show the accuracies and the target with a little room, never above 100%."""
    values = [r["accuracy"] for r in rows] + ([target] if target is not None else [])
    low, high = min(values), max(values)
    pad = (high - low) * 0.12 or abs(high) * 0.005 or 0.5
    top = high + pad
    ax.set_ylim(low - pad, min(top, 100.0 + pad / 4) if unit == "%" else top)
