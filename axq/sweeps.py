"""Run every point of a sweep query, reusing cached points, and tabulate getter values.

`k:=a:b:c` (and ranges, see axq/query.py) stands for several values of one parameter;
several swept parameters form their product. Each point is an ordinary `byquery` (a
`Point`, the job an executor of axq/executor.py runs: here one after another, or on a Ray
cluster). A point whose build fails becomes a row with the reason and its log; the others
still run. An entry marked invalid by its build (an INVALID LoadGen run, say) is a result,
not a failure: its row says why (`invalid_reason`). The rows become a table, CSV or a plot
in axq/table.py and axq/plots.py.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from axq.build import Builder, log_path_of
from axq.entry import Entry
from axq.errors import AxqError, Interrupted, ManifestError, UsageError, did_you_mean
from axq.executor import Executor, Row, Sequential, SweepInterrupted
from axq.progress import Reporter
from axq.query import Query, parse

if TYPE_CHECKING:
    from axq.graph import Node
    from axq.resolve import Scope
    from axq.store import Store

__all__ = ["Point", "Row", "SweepInterrupted", "sweep", "swept_keys"]


def swept_keys(query: Query) -> list[str]:
    """Return the swept parameter names, in the order typed."""
    return [c.key for c in query.conditions if c.op == "sweep"]


def swept_values(point: Query, swept: list[str]) -> Row:
    """Return a point's swept values: the start of its row."""
    return {k: point.assignments[k] for k in swept}


def label(point: Query, swept: list[str]) -> str:
    """Name a point by its swept values: `framework=beta,batch_size=32`."""
    return ",".join(str(c) for c in point.conditions if c.key in swept)


def check_points(points: list[Query], overrides: dict[str, Any] | None, work_collection: Any) -> None:
    """Resolve every point first: a bad value anywhere fails the sweep before a point runs."""
    from axq.resolve import Scope, resolve
    from axq.store import Store

    scope = Scope.of(Store(work_collection))
    for point in points:
        resolve(point, overrides, scope)


def entry_row(entry: Entry, getters: list[str]) -> Row:
    """Read the getters of a point's entry, the bounds its recipe declares for them, its validity."""
    known = entry.keys()
    unknown = [key for key in getters if key not in known]
    if unknown:  # the same for every point: stop rather than fill a table with errors
        raise UsageError(f"entry `{entry.name}` has no getter `{unknown[0]}`" + did_you_mean(unknown[0], known))
    return {**{key: entry.get(key) for key in getters}, **bound_values(entry, getters),
            "valid": entry.invalid_reason is None, "error": entry.invalid_reason, "entry": entry.name}


def failure(error: Exception) -> tuple[str, str | None]:
    """Return a failed build's one-line reason and its log; re-raise what is not a build's failure."""
    if isinstance(error, (KeyboardInterrupt, Interrupted, UsageError)):
        raise error
    log = log_path_of(error)
    if not isinstance(error, AxqError) and not log:
        raise error  # a bug outside any build: not a result
    return str(error).splitlines()[0].replace(f"; log: {log}", ""), log


@dataclass
class Point:
    """One point of a sweep, as an executor runs it (see axq.executor.Job)."""

    query: Query
    swept: list[str]
    getters: list[str]
    overrides: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return label(self.query, self.swept)

    def run(self, store: Store, reporter: Reporter, scope: Scope | None = None) -> Row:
        """Build (or reuse) the point and read its getters; a failed build becomes the row's error."""
        try:
            entry = self._entry(store, reporter, scope)
        except Exception as error:  # a real failure of this point: report it, keep sweeping
            return self.failed(*failure(error))
        return {**swept_values(self.query, self.swept), **entry_row(entry, self.getters)}

    def _entry(self, store: Store, reporter: Reporter, scope: Scope | None) -> Entry:
        if scope is None:
            return Builder(store, reporter).byquery(self.query, self.overrides)
        from axq.resolve import resolve

        return Builder(store, reporter).ensure(resolve(self.query, self.overrides, scope), str(self.query))

    def cached(self, store: Store, reporter: Reporter) -> Row | None:
        """Return the row if this collection holds the point (built here, or imported from a cluster)."""
        from axq.build import stale_reason

        entry = Builder(store, reporter).lookup(self.node(store))
        if entry is None:
            name = store.memo_lookup(self._imported_memo())
            manifest = store.read_manifest(name) if name else None
            if name and manifest and not stale_reason(store, manifest):
                entry = Entry(store, name, manifest)
        return None if entry is None else {**swept_values(self.query, self.swept), **entry_row(entry, self.getters)}

    def node(self, store: Store) -> Node:
        from axq.resolve import Scope, resolve

        return resolve(self.query, self.overrides, Scope.of(store))

    def entries(self, row: Row) -> list[str]:
        return [row["entry"]] if row.get("entry") else []

    def imported(self, store: Store, row: Row) -> Row:
        """Remember the imported entry for this point, so that a rerun reads it here."""
        if row.get("entry"):
            with store.writing():
                store.memo_record(self._imported_memo(), row["entry"])
        return row

    def _imported_memo(self) -> str:
        """Key under which an entry built elsewhere for this point is remembered (never a local query's key)."""
        from axq.build import overrides_text
        from axq.store import memo_key

        return memo_key("--on=ray", str(self.query), *overrides_text(self.overrides))

    def failed(self, reason: str, log: str | None = None) -> Row:
        return {**swept_values(self.query, self.swept), **{key: None for key in self.getters},
                "valid": None, "error": reason, "log": log, "entry": None}


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
    executor: Executor | None = None,
) -> list[Row]:
    """Run every point of a sweep and return one row per point (swept values, getters, validity).

    The executor runs the points: here one after another (the default), or on a Ray cluster
    (`axq.cluster.Ray`).
    """
    from axq.store import Store

    query, getters = sweep_arguments(query, getters)
    swept, points = swept_keys(query), query.expand()
    check_points(points, overrides, work_collection)
    jobs = [Point(point, swept, getters, overrides) for point in points]
    return (executor or Sequential()).run(jobs, Store(work_collection), reporter or Reporter(), "sweep", on_row)


# -- what a recipe says about its getters ------------------------------------------------------


@dataclass(frozen=True)
class Notes:
    """What a recipe says about its getters: their units and which getter bounds which."""

    units: dict[str, str] = field(default_factory=dict)
    bounds: dict[str, str] = field(default_factory=dict)


def notes_of(entry: Entry) -> Notes:
    """Read the units and bounds that the entry's recipe declares now (units read from the entry)."""
    from axq.locations import RECIPE_FILE

    path = os.path.join(entry.recipe_dir(), RECIPE_FILE)
    try:
        stamp = os.stat(path)
    except OSError:
        return Notes()
    declared = _declared(path, stamp.st_mtime_ns, stamp.st_size)
    units = {g: _unit(entry, g, spec) for g, spec in declared.get("units", {}).items()}
    return Notes({g: u for g, u in units.items() if u}, dict(declared.get("bounds", {})))


@functools.lru_cache(maxsize=64)
def _declared(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """Read a recipe.json once while it is unchanged (`list` asks it of every entry of the recipe)."""
    from axq.store import read_text

    return dict(json.loads(read_text(path) or "{}"))


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


def rows_units(rows: list[Row], work_collection: Any = None) -> list[dict[str, str]]:
    """Return each row's units, as the recipe of its entry declares them (a row without an entry: none)."""
    from axq.store import Store

    store = Store(work_collection)
    return [notes_of(Entry.load(store, row["entry"])).units if row.get("entry") else {} for row in rows]


def rows_notes(rows: list[Row], work_collection: Any = None, key: str = "entry") -> Notes:
    """Return the notes of the recipe behind the first row with an entry (none: no notes)."""
    from axq.store import Store

    names = [row[key] for row in rows if row.get(key)]
    return notes_of(Entry.load(Store(work_collection), names[0])) if names else Notes()
