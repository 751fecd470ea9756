"""Find an entry and act on it: `byquery`, `byname`, `show`, `rm`, and the stages after an entry.

A found entry is handed to the stages that follow it on the line (`, get KEY`, `, get_path`,
`, show`, `, remove`); without one, `get_path` prints its directory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from axq.answer import emit, entry_status, query_memo
from axq.verbs.command import Call, Option, Stage

if TYPE_CHECKING:
    from axq.entry import Entry


def get_stage(entry: Entry, args: list[str], call: Call) -> int:
    """Print a getter's value."""
    emit(entry.get(args[0]), call.json)
    return entry_status(entry, args[0])


def get_path_stage(entry: Entry, args: list[str], call: Call) -> int:
    """Print the entry's directory (or a path inside it)."""
    print(os.path.join(str(entry.path), *args))
    return 0


def show_stage(entry: Entry, args: list[str], call: Call) -> int:
    """Print an entry's manifest and files (or its build log with --log)."""
    if call.options.get("--log"):
        print((entry.path / "build.log").read_text(), end="")
        return 0
    files = sorted(str(p.relative_to(entry.path)) for p in entry.path.rglob("*") if p.is_file())
    emit({"path": str(entry.path), **entry.manifest, "files": files}, call.json)
    return 0


def remove_stage(entry: Entry, args: list[str], call: Call) -> int:
    """Remove the entry (refusing to break dependents without --force)."""
    return remove_names(entry.name, call)


FORCE = Option("--force", "also remove the entries that depend on what is removed")


LOG = Option("--log", "print the build log instead")


ENTRY_STAGES = (
    Stage("get", "KEY", "print a getter, result or parameter", (1, 1), handler=get_stage),
    Stage("get_path", "[PATH]", "print the entry's directory", (0, 1), handler=get_path_stage),
    Stage("show", "", "print the manifest and files", options=(LOG,), handler=show_stage),
    Stage("remove", "", "remove the entry", options=(FORCE,), handler=remove_stage),
)


def run_entry_stages(entry: Entry, call: Call) -> int:
    """Run the stages after a found entry (`get_path` if none); return the worst exit code."""
    code = 0
    for stage, args in call.stages or [(ENTRY_STAGES[1], [])]:
        assert stage.handler is not None
        code = max(code, stage.handler(entry, args, call))
    return code


def byquery(call: Call) -> int:
    """Find (or build) the entry a query means, then run the stages on it."""
    import axq.api as api

    entry = api.byquery(call.query, call.parsed_overrides(), work_collection=call.work_collection,
                        reporter=call.reporter(), memo=query_memo(call.words, call.overrides))
    return run_entry_stages(entry, call)


def byname(call: Call) -> int:
    """Find an entry by its directory name, then run the stages on it."""
    import axq.api as api

    return run_entry_stages(api.byname(call.words[0], work_collection=call.work_collection), call)


def show(call: Call) -> int:
    """Print an entry's manifest, files and provenance."""
    import axq.api as api

    return show_stage(api.byname(call.words[0], work_collection=call.work_collection), [], call)


def rm(call: Call) -> int:
    """Remove entries by name or query."""
    return remove_names(call.words[0], call)


def remove_names(target: str, call: Call) -> int:
    """Remove entries by name or query, refusing to break dependents without --force."""
    import axq.api as api

    removed = api.remove(target, force=bool(call.options.get("--force")), work_collection=call.work_collection)
    if call.json:
        emit(removed, True)
    else:
        print("\n".join(f"removed {n}" for n in removed))
    return 0
