"""List the built entries matching a query as a table: `list`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from axq.answer import emit
from axq.verbs.command import Call

if TYPE_CHECKING:
    from axq.entry import Entry


def list_entries(call: Call) -> int:
    """Print the entries matching a query as a table (getter values as columns), stale ones marked."""
    import axq.api as api
    from axq.table import entry_rows, format_table

    entries = api.list_entries(call.query, work_collection=call.work_collection)
    columns = [c for c in call.options.get("--columns", "").split(",") if c]
    rows = entry_rows(entries, columns, call.options.get("--sort"))
    _mark_stale(rows, entries, call)
    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(rows))
    else:
        print(f"no entries match `{call.query}` in {api.where(work_collection=call.work_collection)}",
              file=sys.stderr)
    return 0


def _mark_stale(rows: list[dict[str, Any]], entries: list[Entry], call: Call) -> None:
    """Add why each entry is stale: always in JSON, as a column only when some entry is stale."""
    import axq.api as api

    reasons = api.stale_reasons(entries, work_collection=call.work_collection) if entries else {}
    if call.json or reasons:
        for row in rows:
            row["stale"] = reasons.get(row["name"])
