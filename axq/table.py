"""Turn rows into text: an aligned table, CSV; lay entries out as rows; check output paths first.

Rows are dicts (one per entry, sweep point or configuration), as `axq list`, `axq sweep` and
`axq explore` make them; axq/plots.py draws them. A file a verb will write is checked before
anything runs (`check_output`), so that a long sweep never ends on "no such directory".
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from typing import Any

from axq.errors import AxqError, UsageError, did_you_mean

Row = dict[str, Any]


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
    if numeric(value):
        return (0, value)
    return (1, str(value))


def numeric(value: Any) -> bool:
    """Say whether a value is a number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    """Return a cell as one line of text: `-` for nothing, floats to six figures."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return " ".join(str(value).split("\n"))  # a reason of several lines stays in its row


def format_table(rows: list[dict[str, Any]]) -> str:
    """Format rows (dicts with the same keys) as left-aligned columns under a header."""
    headers = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_text(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def with_units(rows: list[Row], units: list[dict[str, str]]) -> list[Row]:
    """Return rows for the text table with each figure followed by its row's unit: `70246 samples/s`, `1.2e+07 ns`."""
    return [{k: f"{_text(v)} {unit[k]}" if numeric(v) and unit.get(k) else v for k, v in row.items()}
            for row, unit in zip(rows, units, strict=True)]


def check_columns(keys: set[str], shown: list[str], columns: list[str], sort: str | None) -> None:
    """Raise UsageError (exit 2) for a column no listed entry has, or a sort key that is not a column shown."""
    for column in columns:
        if column not in keys:
            raise UsageError(f"--columns: no listed entry has `{column}`" + _near(column, keys))
    if sort is not None and sort not in shown:
        hint = "; add it to --columns to sort by it" if sort in keys else _near(sort, shown) or _near(sort, keys)
        raise UsageError(f"--sort {sort}: not a column shown ({', '.join(shown)})" + hint)


def _near(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean `x`?" for the columns a word begins (`perf`), else its near misses."""
    begun = sorted(c for c in set(choices) if c.startswith(word))[:3]
    return "; did you mean " + " or ".join(f"`{c}`" for c in begun) + "?" if begun else did_you_mean(word, choices)


def write_csv(rows: list[Row], path: str) -> None:
    """Write rows as CSV with a header."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def failed(rows: list[Row]) -> bool:
    """Say whether a row failed to build (an INVALID result, with its reason in `error`, is not a failure)."""
    return any(row.get("error") and row.get("valid") is None for row in rows)


class OutputError(AxqError):
    """A file a verb was asked to write cannot be written there (checked before anything runs)."""

    exit_code = 1


EXAMPLES = {"--csv": "rows.csv", "--plot": "plot.png", "--out": "archive.tgz"}


def check_output(path: str, option: str) -> None:
    """Raise OutputError unless `path` names a file that can be written: its folder exists, it is no folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        example = os.path.join(path, EXAMPLES.get(option, "out"))
        raise OutputError(f"{option} {path}: is a directory; name a file in it, e.g. {example}")
    if not os.path.isdir(folder):
        raise OutputError(f"{option} {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OutputError(f"{option} {path}: permission denied")
