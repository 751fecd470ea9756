"""List the built entries matching a query as a table: `list`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from axq.answer import emit
from axq.verbs.command import Call

if TYPE_CHECKING:
    from axq.entry import Entry


def list_entries(call: Call) -> int:
    """Print the entries matching a query as a table (getter values as columns), superseded and stale ones marked."""
    import axq.api as api
    from axq.table import entry_rows, format_table, with_units

    entries = api.list_entries(call.query, work_collection=call.work_collection)
    columns = [c for c in call.options.get("--columns", "").split(",") if c]
    _check_columns(entries, columns, call.options.get("--sort"))
    rows = entry_rows(entries, columns, call.options.get("--sort"))
    order = {e.name: e for e in entries}
    _mark_invalid(rows, [order[r["name"]] for r in rows], call)
    _mark_stale(rows, entries, call)
    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(with_units(rows, _units([order[r["name"]] for r in rows]))))
    else:
        print(f"no entries match `{call.query}` in {api.where(work_collection=call.work_collection)}",
              file=sys.stderr)
    return 0


def _check_columns(entries: list[Entry], columns: list[str], sort: str | None) -> None:
    """Refuse (exit 2, with a near miss) a column no listed entry has and a sort key that is not shown."""
    from axq.table import check_columns

    if entries:  # with no entry there is nothing to tell a typo from
        keys = {"name", "tags"}.union(*(e.keys() for e in entries))
        check_columns(keys, ["name", *columns] if columns else ["name", "tags"], columns, sort)


def _mark_invalid(rows: list[dict[str, Any]], entries: list[Entry], call: Call) -> None:
    """Add why an entry is INVALID (its build's reason): always in JSON, as a column when some entry is."""
    reasons = [e.invalid_reason for e in entries]
    if call.json or any(reasons):
        for row, reason in zip(rows, reasons, strict=True):
            row["invalid"] = reason


def _units(entries: list[Entry]) -> list[dict[str, str]]:
    """Return each entry's units, as its recipe declares them (read once per recipe and unit getter)."""
    from axq.sweeps import notes_of

    return [notes_of(e).units for e in entries]


def _mark_stale(rows: list[dict[str, Any]], entries: list[Entry], call: Call) -> None:
    """Add why each entry is superseded (by newer code) or else stale: in JSON always, as columns when some is."""
    import axq.api as api

    superseded = api.superseded_reasons(entries, work_collection=call.work_collection) if entries else {}
    stale = api.stale_reasons(entries, work_collection=call.work_collection) if entries else {}
    stale = {name: reason for name, reason in stale.items() if name not in superseded}
    for column, reasons in (("superseded", superseded), ("stale", stale)):
        if call.json or reasons:
            for row in rows:
                row[column] = reasons.get(row["name"])
