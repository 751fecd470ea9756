"""Getters of a submission entry (on the cached-query path: nothing heavy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from axq.entry import Entry


def submission_path(entry: Entry) -> str:
    """Return the directory holding the division folder (pass it to the checker's --input)."""
    return str(entry.path / "submission")
