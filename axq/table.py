"""Lay entries out as rows and print rows as an aligned text table."""

from __future__ import annotations

from typing import Any

from axq.errors import AxqError


def _cell(entry: Any, column: str) -> Any:
    """Return an entry's value for a column, or None if it has none."""
    try:
        return entry.get(column)
    except AxqError:
        return None


def entry_rows(entries: list[Any], columns: list[str], sort: str | None = None) -> list[dict[str, Any]]:
    """Return one row per entry: its name and tags, or the chosen columns."""
    if columns:
        rows = [{"name": e.name, **{c: _cell(e, c) for c in columns}} for e in entries]
    else:
        rows = [{"name": e.name, "tags": ",".join(e.tags)} for e in entries]
    if sort:
        rows.sort(key=lambda r: (r.get(sort) is None, _sort_key(r.get(sort))))
    return rows


def _sort_key(value: Any) -> tuple[int, Any]:
    """Order numbers numerically, everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Format rows (dicts with the same keys) as left-aligned columns under a header."""
    headers = list(rows[0])
    cells = [[_text(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
