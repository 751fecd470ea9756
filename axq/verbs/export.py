"""Move entries between collections as archives: `export` and `import`."""

from __future__ import annotations

from axq.answer import emit
from axq.errors import UsageError
from axq.verbs.command import Call


def export(call: Call) -> int:
    """Write the archive of an entry's closure (axq/archive.py)."""
    from axq import archive
    from axq.table import check_output

    if "--out" not in call.options:
        raise UsageError(f"usage: {call.verb.usage()} (--out is required)")
    check_output(call.options["--out"], "--out")
    names = archive.export_archive(call.query, call.options["--out"], work_collection=call.work_collection,
                                   overrides=call.parsed_overrides())
    emit(names if call.json else f"wrote {call.options['--out']}: {len(names)} entries ({names[-1]} and what it needs)",
         call.json)
    return 0


def import_archive(call: Call) -> int:
    """Verify an archive and publish its entries into the work collection (axq/archive.py)."""
    import dataclasses

    from axq import archive

    report = archive.import_archive(call.words[0], work_collection=call.work_collection)
    if call.json:
        emit(dataclasses.asdict(report), True)
    else:
        print(f"imported {len(report.imported)} entries, {len(report.skipped)} already here: {report.root}")
    return 0
