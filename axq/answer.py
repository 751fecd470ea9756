"""Print a command's answer: a value (text or JSON), an INVALID entry's warning; key the query memo.

Shared by the cached-query path of `axq.cli` and the verbs of `axq.verbs`, so it imports
nothing at the top but `sys`: it is on the cached path.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; this module is on the cached path
    from typing import Any


def emit(value: Any, as_json: bool = False) -> None:
    """Print a value: JSON with --json or for containers, else plain text."""
    if as_json or isinstance(value, (dict, list, tuple)) or value is None or isinstance(value, bool):
        import json

        print(json.dumps(value, indent=2 if isinstance(value, (dict, list)) else None, default=str))
    else:
        print(value)


def query_memo(query_words: list[str], overrides: list[str]) -> str:
    """Key the memo by the query text as typed and the sorted overrides (cheap: no parser)."""
    from axq.store import memo_key

    return memo_key(" ".join(query_words), *sorted(overrides))


def entry_status(entry: Any) -> int:
    """Warn and return 1 if the entry is marked invalid by its build, else 0."""
    reason = entry.invalid_reason
    if reason:
        print(f"axq: {entry.name} is marked INVALID: {reason}", file=sys.stderr)
        return 1
    return 0
