"""Run axq from the command line, axs style: `axq byquery QUERY , get accuracy`.

The verbs, their arguments, options and help are declared once in `axq.verbs`; this
module is the entry point: it answers a cached `byquery Q , get KEY` from the query memo
(`_cached_get`) before anything else, else parses the line against the registry and runs
the verb, and turns user errors (`AxqError`) into one line and an exit code. Anything else
is a bug and shows its traceback (`--debug` shows tracebacks always).

The cached path imports only `axq.entry` (and what it needs: json, the store, the
recipe's light getters), never lark, the resolver, the verb registry (dataclasses) or a
recipe's heavy modules.
"""

from __future__ import annotations

import sys

from axq.answer import emit, entry_status, query_memo
from axq.errors import AxqError


def _cached_get(argv: list[str]) -> int | None:
    """Answer `byquery Q [--k=v ...] , get KEY` from the memo; None if it must go the long way."""
    if len(argv) < 5 or argv[0] != "byquery" or argv[-3:-1] != [",", "get"] or argv[-1].startswith("-"):
        return None
    words = argv[1:-3]
    if any(w == "," or (w.startswith("-") and not w.startswith("--")) for w in words):
        return None
    overrides = [w for w in words if w.startswith("--")]
    if any(not o.partition("=")[2] or o.startswith("--work-collection") for o in overrides):
        return None  # a flag (--json, --help, ...) or the collection: the long way knows them
    return _answer_from_memo([w for w in words if not w.startswith("--")], overrides, argv[-1])


def _answer_from_memo(words: list[str], overrides: list[str], key: str) -> int | None:
    """Read the memoised entry and print its getter; None on a memo miss."""
    from axq.entry import Entry
    from axq.store import Store

    store = Store()
    name = store.memo_lookup(query_memo(words, overrides))
    if not name:
        return None
    entry = Entry.load(store, name)
    emit(entry.get(key))
    return entry_status(entry, key)


def main(argv: list[str] | None = None, *, handle_signals: bool = False) -> int:
    """Run one command line; return its exit code.

    With handle_signals (the console script), SIGTERM and SIGHUP interrupt a build as
    Ctrl-C does, so its children are stopped before axq reports; the cached path, which
    builds nothing, does not pay for that.
    """
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        fast = None if debug else _cached_get(argv)
        if fast is not None:
            return fast
        if handle_signals:
            from axq.process import install_signal_handlers

            install_signal_handlers()
        from axq import verbs

        return verbs.run(argv)
    except AxqError as error:
        if debug:
            raise
        print(f"axq: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("axq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `axq ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


def entry_point() -> None:
    """Console-script entry: exit with main's code."""
    sys.exit(main(handle_signals=True))
