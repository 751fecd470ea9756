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


# Getters that answer whether the entry is valid: their answer is the verdict, not a failure.
VALIDITY_GETTERS = frozenset({"result_valid"})


def entry_status(entry: Any, key: str | None = None) -> int:
    """Warn and return 1 if the entry is marked invalid by its build (unless `key` asks just that), else 0."""
    reason = None if key in VALIDITY_GETTERS else entry.invalid_reason
    if reason:
        print(f"axq: {entry.name} is marked INVALID: {reason}", file=sys.stderr)
        return 1
    return 0
