"""Explore a grid of configurations: accuracy against performance, the Pareto front, the best one.

`axq explore QUERY-WITH-SWEEPS` treats every point of the sweep as a configuration. The
recipe that the point's query chooses says how a configuration is scored, with the
resolve-time hook named by `"explore"` in recipe.json: `plan(params) -> dict` with

    {"accuracy": {"overrides": {...}, "getter": "accuracy"},
     "performance": {"overrides": {...}, "getter": "performance",
                     "higher_is_better": true, "unit": "samples/s"},
     "reference": {...},   # the overrides of the configuration accuracy is compared with
     "target": 0.99}       # the least share of the reference's accuracy that is good enough

Every configuration's three runs (accuracy, performance, and the reference's accuracy run)
are resolved before anything is built: one that a recipe refuses (its declarations or its
`check`) is a skipped row with the reason. Then each is built or reused, as a sweep does
(a failure is a row with its error and log; Ctrl-C keeps the finished rows; a rerun reuses
them). Rows on the accuracy-vs-performance front are marked `pareto`, rows whose accuracy
is at least `target` times the reference's `meets_target`, and `best` names the fastest
valid row that meets it. The kernel knows nothing of what is measured: the recipe says.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from axq.entry import Entry
from axq.errors import ManifestError, NoProducerError, ParameterError, UsageError, did_you_mean
from axq.executor import Executor, Row, Sequential, SweepInterrupted
from axq.progress import Reporter
from axq.query import Condition, Query, parse
from axq.sweeps import failure, label, swept_keys, swept_values
from axq.table import numeric

if TYPE_CHECKING:
    from axq.graph import Node
    from axq.resolve import Scope
    from axq.store import Store

DEFAULT_TARGET = 0.99
SKIPPED = (ParameterError, NoProducerError)  # a configuration the recipes refuse: a row, not an error


@dataclass(frozen=True)
class Run:
    """One run that scores a configuration: the overrides that make it and the getter that reads it."""

    overrides: dict[str, Any]
    getter: str
    higher_is_better: bool = True
    unit: str | None = None


@dataclass(frozen=True)
class Plan:
    """How a recipe scores a configuration (what its `explore` hook returns)."""

    accuracy: Run
    performance: Run
    reference: dict[str, Any]
    target: float = DEFAULT_TARGET

    @classmethod
    def read(cls, recipe: str, data: Any) -> Plan:
        """Check what an explore hook returned; a wrong shape is the recipe's ManifestError."""
        if not isinstance(data, dict) or not {"accuracy", "performance"} <= set(data):
            raise ManifestError(recipe, "explore", "the hook must return a dict with `accuracy` and `performance`")
        target = data.get("target", DEFAULT_TARGET)
        if not isinstance(target, (int, float)) or not 0 < target <= 1:
            raise ManifestError(recipe, "explore", f"`target` must be a share in (0, 1], got {target!r}")
        return cls(_run(recipe, "accuracy", data["accuracy"]), _run(recipe, "performance", data["performance"]),
                   dict(data.get("reference") or {}), float(target))


def _run(recipe: str, name: str, data: Any) -> Run:
    """Check one run of an explore plan."""
    if not isinstance(data, dict) or not isinstance(data.get("getter"), str):
        raise ManifestError(recipe, "explore", f"`{name}` must be a dict with a `getter` (and `overrides`)")
    unknown = set(data) - {"overrides", "getter", "higher_is_better", "unit"}
    if unknown:
        raise ManifestError(recipe, "explore", f"`{name}` has unknown key `{sorted(unknown)[0]}`")
    return Run(dict(data.get("overrides") or {}), data["getter"], bool(data.get("higher_is_better", True)),
               data.get("unit"))


@dataclass(frozen=True)
class Configuration:
    """One point of the grid, with the three queries that score it (or why it is skipped)."""

    point: Query
    plan: Plan | None = None
    accuracy: Query | None = None
    performance: Query | None = None
    reference: Query | None = None
    skipped: str | None = None

    def runs(self) -> tuple[Query | None, Query | None, Query | None]:
        """Return the accuracy, performance and reference runs' queries."""
        return (self.accuracy, self.performance, self.reference)

    def command(self) -> str:
        """Return the one-liner that reproduces this configuration's performance figure."""
        assert self.performance is not None and self.plan is not None
        return f"{shlex.join(['axq', 'byquery', str(self.performance)])} , get {self.plan.performance.getter}"


def assign(query: Query, values: dict[str, Any]) -> Query:
    """Return the query with `k=v` for each value: in place of a condition on k, else at the end."""
    kept = [Condition(c.key, "=", values[c.key]) if c.key in values and c.op not in ("tag", "notag") else c
            for c in query.conditions]
    named = {c.key for c in query.conditions}
    return Query((*kept, *(Condition(k, "=", v) for k, v in values.items() if k not in named)))


def configure(point: Query, scope: Any) -> Configuration:
    """Resolve a configuration's three runs; a refused one becomes a skipped configuration."""
    from axq.resolve import choose, resolve

    try:
        chosen = choose(point, scope)
        plan = _plan(chosen.producer, chosen.params or {})
        queries = [assign(point, {**extra, **plan.accuracy.overrides})
                   for extra in ({}, plan.reference)] + [assign(point, plan.performance.overrides)]
        for query in queries:
            resolve(query, None, scope)
    except SKIPPED as refused:
        if isinstance(refused, ParameterError):
            refused.rule = ""  # the rule is the same for every row: the reason is the news
        return Configuration(point, skipped=str(refused))
    return Configuration(point, plan, queries[0], queries[2], queries[1])


def _plan(producer: Any, params: dict[str, Any]) -> Plan:
    """Call the chosen rule's explore hook, or say that its recipe cannot be explored."""
    hook = producer.hook("explore")
    if hook is None:
        raise UsageError(f"recipe `{producer.recipe.name}` does not say how to score a configuration: "
                         'it has no `"explore"` hook (see docs/recipes.md)')
    return Plan.read(producer.recipe.name, hook(dict(params)))


def configurations(query: Query, overrides: dict[str, Any] | None, work_collection: Any) -> list[Configuration]:
    """Resolve every configuration of the grid; refuse a grid whose every configuration is refused."""
    from axq.resolve import Scope
    from axq.store import Store

    scope = Scope.of(Store(work_collection))
    found = [configure(assign(point, overrides or {}), scope) for point in query.expand()]
    if all(c.skipped for c in found):
        raise UsageError(f"every configuration of `{query}` is refused; the first: {found[0].skipped}")
    return found


# -- running ------------------------------------------------------------------------------------


def explore(
    query: str | Query,
    overrides: dict[str, Any] | None = None,
    *,
    target: float | None = None,
    work_collection: str | os.PathLike | None = None,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> list[Row]:
    """Score every configuration of a sweep query and return one row each, front and target marked.

    The executor scores the configurations: here one after another (the default), or on a
    Ray cluster (`axq.cluster.Ray`).
    """
    from axq.store import Store

    query = parse(query) if isinstance(query, str) else query
    if not query.is_sweep:
        raise UsageError(f"`{query}` sweeps nothing: use `k:=a:b:c` for at least one parameter")
    swept = swept_keys(query)
    jobs = [Scoring(c, swept, target) for c in configurations(query, overrides, work_collection)]
    try:
        rows = (executor or Sequential()).run(jobs, Store(work_collection), reporter or Reporter(), "explore")
    except SweepInterrupted as stop:
        mark(stop.rows)
        raise
    return mark(rows)


@dataclass
class Scoring:
    """Scoring one configuration, as an executor runs it (see axq.executor.Job)."""

    configuration: Configuration
    swept: list[str]
    target: float | None = None

    @property
    def label(self) -> str:
        return label(self.configuration.point, self.swept)

    def run(self, store: Store, reporter: Reporter, scope: Scope | None = None) -> Row:
        """Build (or reuse) the configuration's runs and read its figures; a failed build is the row's error."""
        return score(self.configuration, self.swept, self.target, store.root, reporter, scope)

    def cached(self, store: Store, reporter: Reporter) -> Row | None:
        """Score here if that builds nothing: the configuration is refused, or every run is in `store`."""
        from axq.build import Builder
        from axq.resolve import Scope, resolve

        scope, builder = Scope.of(store), Builder(store, reporter)
        runs = [q for q in self.configuration.runs() if q is not None]
        if self.configuration.skipped or all(builder.lookup(resolve(q, None, scope)) for q in runs):
            return self.run(store, reporter)
        return None

    def node(self, store: Store) -> Node | None:
        from axq.resolve import Scope, resolve

        query = self.configuration.performance
        return None if query is None else resolve(query, None, Scope.of(store))

    def entries(self, row: Row) -> list[str]:
        return [row[k] for k in RUN_COLUMNS if row.get(k)]

    def imported(self, store: Store, row: Row) -> Row:
        return row

    def failed(self, reason: str, log: str | None = None) -> Row:
        return {**swept_values(self.configuration.point, self.swept), **SCORE_COLUMNS, "error": reason, "log": log}


def score(configuration: Configuration, swept: list[str], target: float | None, work_collection: Any,
          reporter: Reporter, scope: Scope | None = None) -> Row:
    """Build (or reuse) a configuration's runs and read its figures; a failure becomes the row's error."""
    row: Row = swept_values(configuration.point, swept)
    if configuration.skipped or configuration.plan is None:
        return {**row, **SCORE_COLUMNS, "skipped": configuration.skipped}
    plan = configuration.plan
    row.update(SCORE_COLUMNS, unit=plan.performance.unit, higher_is_better=plan.performance.higher_is_better,
               target=plan.target if target is None else target, command=configuration.command())
    try:
        row.update(_figures(configuration, work_collection, reporter, scope))
    except Exception as error:
        message, log = failure(error)
        row.update(error=message, log=log)
    return row


SCORE_COLUMNS: dict[str, Any] = dict(
    accuracy=None, reference_accuracy=None, ratio=None, performance=None, unit=None, higher_is_better=None,
    valid=None, pareto=False, meets_target=None, target=None, skipped=None, error=None, log=None, command=None,
    accuracy_entry=None, performance_entry=None, reference_entry=None)  # a row's columns before anything is known
RUN_COLUMNS = ("accuracy_entry", "performance_entry", "reference_entry")


def _figures(configuration: Configuration, work_collection: Any, reporter: Reporter, scope: Scope | None) -> Row:
    """Build the accuracy, performance and reference runs; return what they say (an INVALID run: why)."""
    from axq.build import Builder
    from axq.store import Store

    plan, builder = configuration.plan, Builder(Store(work_collection), reporter)
    assert plan is not None
    runs = {"accuracy": configuration.accuracy, "performance": configuration.performance,
            "reference": configuration.reference}
    entries = {name: _entry(builder, query, scope) for name, query in runs.items() if query is not None}
    accuracy, reference = (_read(entries[n], plan.accuracy.getter) for n in ("accuracy", "reference"))
    performance = _read(entries["performance"], plan.performance.getter)
    ratio = accuracy / reference if numeric(accuracy) and numeric(reference) and reference else None
    invalid = [f"{name} run INVALID: {e.invalid_reason}" for name, e in entries.items() if e.invalid_reason]
    return {"accuracy": accuracy, "reference_accuracy": reference, "ratio": ratio, "performance": performance,
            "valid": not invalid, "error": "; ".join(invalid) or None,
            **{f"{name}_entry": entry.name for name, entry in entries.items()}}


def _entry(builder: Any, query: Query, scope: Scope | None) -> Entry:
    """Build (or reuse) one run: by the collection's memo here, resolved with `scope` on a node."""
    if scope is None:
        return builder.byquery(query)
    from axq.resolve import resolve

    return builder.ensure(resolve(query, None, scope), str(query))


def _read(entry: Entry, getter: str) -> Any:
    """Read a getter; an entry without it is the recipe's plan naming a wrong getter."""
    known = entry.keys()
    if getter not in known:
        raise UsageError(f"entry `{entry.name}` has no getter `{getter}`" + did_you_mean(getter, known))
    return entry.get(getter)


# -- the front and the best ------------------------------------------------------------------


def mark(rows: list[Row]) -> list[Row]:
    """Mark each row's `meets_target` and `pareto` (within rows of one unit and direction)."""
    for row in rows:
        if row["ratio"] is not None:
            row["meets_target"] = row["ratio"] >= row["target"] - 1e-12
    comparable = [r for r in rows if scored(r)]
    for row in comparable:
        rivals = [r for r in comparable if _kind(r) == _kind(row)]
        row["pareto"] = not any(dominates(other, row) for other in rivals)
    return rows


def scored(row: Row) -> bool:
    """Say whether a row has valid figures to compare."""
    return row["valid"] is True and numeric(row["accuracy"]) and numeric(row["performance"])


def _kind(row: Row) -> tuple[Any, Any]:
    """Return what makes performance figures comparable: their unit and direction."""
    return (row["unit"], row["higher_is_better"])


def _faster(a: Row, b: Row) -> float:
    """Return how much better a's performance is than b's (positive: better), honouring the direction."""
    difference = a["performance"] - b["performance"]
    return difference if a["higher_is_better"] else -difference


def dominates(a: Row, b: Row) -> bool:
    """Say whether a is at least as accurate and as fast as b, and better in one."""
    faster, more_accurate = _faster(a, b), a["accuracy"] - b["accuracy"]
    return faster >= 0 and more_accurate >= 0 and (faster > 0 or more_accurate > 0)


def best(rows: list[Row]) -> list[Row]:
    """Return, for each kind of performance figure, the best valid row that meets the target."""
    found: dict[tuple[Any, Any], Row] = {}
    for row in rows:
        if scored(row) and row["meets_target"]:
            kind = _kind(row)
            if kind not in found or _faster(row, found[kind]) > 0:
                found[kind] = row
    return list(found.values())


# -- output -------------------------------------------------------------------------------------


def table_rows(rows: list[Row], swept: list[str]) -> list[Row]:
    """Lay rows out for the text table: swept values, figures, marks, and a note for the rest."""
    units = {r["unit"] for r in rows if r["unit"]}
    heading = f"performance ({next(iter(units))})" if len(units) == 1 else "performance"
    return [{**{k: r[k] for k in swept}, "accuracy": r["accuracy"],
             "ratio": None if r["ratio"] is None else f"{r['ratio']:.4f}", heading: r["performance"],
             **({"unit": r["unit"]} if len(units) > 1 else {}),
             "valid": r["valid"], "pareto": "*" if r["pareto"] else "", "meets_target": r["meets_target"],
             "note": _note(r)} for r in rows]


def _note(row: Row) -> str:
    """Say why a row has no figures or no valid ones: skipped, INVALID or failed (and why; where its log is)."""
    if row["skipped"]:
        return f"skipped: {row['skipped']}"
    if row["error"] and row["valid"] is False:
        return row["error"]  # `performance run INVALID: ...`, as the build said
    if row["error"]:
        return f"failed: {row['error']}" + (f" (log: {row['log']})" if row.get("log") else "")
    return ""


def summary(rows: list[Row], swept: list[str]) -> list[str]:
    """Say which configuration is best at the target, with the command that reproduces it."""
    winners = best(rows)
    if not winners:
        targets = {r["target"] for r in rows if r["target"] is not None}
        shown = ", ".join(f"{t:.0%}" for t in sorted(targets)) or "the target"
        return [f"no valid configuration reaches {shown} of the reference's accuracy"]
    lines = []
    for row in winners:
        values = ",".join(f"{k}={row[k]}" for k in swept)
        unit = f" {row['unit']}" if row["unit"] else ""
        lines += [f"best configuration at >= {row['target']:.0%} of the reference's accuracy: {values} "
                  f"(performance {row['performance']:.6g}{unit}, accuracy {row['accuracy']:.6g}, "
                  f"{row['ratio']:.2%} of the reference)", f"  {row['command']}"]
    return lines


def describe(rows: list[Row], work_collection: Any = None) -> Any:
    """Return the notes (units) of the recipe behind the rows' accuracy runs."""
    from axq import sweeps

    return sweeps.rows_notes(rows, work_collection, key="accuracy_entry")

