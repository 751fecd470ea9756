"""Run axq from the command line, axs style: `axq byquery QUERY , get accuracy`.

A command line is a pipeline of stages separated by lone `,` arguments. The first stage
finds an entry (`byquery QUERY [--key=value ...]`, `byname NAME`) or runs a command
(`plan`, `rules`, `list`, `show`, `rm`, `gc`, `reindex`, `where`, `sweep`,
`work_collection , remove`); later stages act on the entry (`get KEY`, `get_path`, `show`,
`remove`). Global options anywhere: --work-collection=DIR, --json, --quiet, --debug.

A cached `byquery ... , get KEY` is answered from the query memo without importing lark,
the resolver or any recipe's heavy modules (see `_cached_get`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from axq.errors import AxqError, UsageError

GLOBAL_FLAGS = {"--json", "--quiet", "-q", "--debug", "--force", "--log"}
USAGE = """usage: axq [--work-collection=DIR] [--json] [--quiet] [--debug] COMMAND ...

  byquery QUERY [--key=value ...] [, get KEY | , get_path | , show | , remove]
  byname NAME [, get KEY | , get_path | , show | , remove]
  plan QUERY           what is cached, what would be built, and why
  rules QUERY          which producer rules match, and why the others don't
  list [QUERY] [--columns=a,b,...] [--sort=COLUMN]
  show NAME [--log]    an entry's manifest, files and provenance (or its build log)
  rm QUERY|NAME [--force]
  sweep QUERY-WITH-k:=a:b:c , get KEY [--csv=FILE] [--plot=FILE.png]
  gc                   remove leftovers of failed builds, rebuild the index
  reindex              rebuild the index (finds hand-copied entries)
  where                print the work collection's path
  work_collection , remove   remove every entry

Exit codes: 0 success, 1 a build or getter failed, 2 bad usage or query, 130 interrupted."""


class Options:
    """Global options and per-stage `--key=value` arguments pulled out of argv."""

    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.values: dict[str, str] = {}

    @property
    def json(self) -> bool:
        return "--json" in self.flags

    @property
    def work_collection(self) -> str | None:
        return self.values.get("work-collection")


def split_stages(argv: list[str]) -> list[list[str]]:
    """Split argv into stages at lone `,` arguments."""
    stages: list[list[str]] = [[]]
    for arg in argv:
        if arg == ",":
            stages.append([])
        else:
            stages[-1].append(arg)
    if any(not stage for stage in stages):
        raise UsageError("empty stage: each `,` must be followed by a command (try `axq --help`)")
    return stages


def take_options(stage: list[str], options: Options) -> tuple[list[str], list[str]]:
    """Split a stage into words and `--key=value` overrides, recording global options."""
    words, overrides = [], []
    for arg in stage:
        key = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            options.flags.add("--quiet" if arg == "-q" else arg)
        elif key in ("--work-collection", "--columns", "--sort", "--csv", "--plot"):
            options.values[key[2:]] = _option_value(arg)
        elif arg.startswith("--") and "=" in arg:
            overrides.append(arg)
        elif arg.startswith("-") and arg not in ("-",) and not _looks_like_query(arg):
            raise UsageError(f"unknown option `{arg}` (try `axq --help`)")
        else:
            words.append(arg)
    return words, overrides


def _looks_like_query(arg: str) -> bool:
    """Say whether a dash-word is a query (`-tag`, `-k?`) rather than an option."""
    return not arg.startswith("--") and len(arg) > 1


def _option_value(arg: str) -> str:
    if "=" not in arg:
        raise UsageError(f"option `{arg}` needs a value: `{arg}=...`")
    return arg.split("=", 1)[1]


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn `--key=value` arguments into typed values with the query grammar."""
    from axq.query import parse_value

    parsed = {}
    for arg in overrides:
        key, text = arg[2:].split("=", 1)
        if not key.isidentifier():
            raise UsageError(f"bad override `{arg}`: expected --key=value")
        parsed[key] = parse_value(text)
    return parsed


def emit(value: Any, options: Options) -> None:
    """Print a value: JSON with --json or for containers, else plain text."""
    import json

    if options.json or isinstance(value, (dict, list, tuple)):
        print(json.dumps(value, indent=None if not isinstance(value, (dict, list)) else 2, default=str))
    elif value is None or isinstance(value, bool):
        print(json.dumps(value))
    else:
        print(value)


def memo_key(query_words: list[str], overrides: list[str]) -> str:
    """Key the memo by the query text as typed and the sorted overrides (cheap: no parser)."""
    from axq.store import memo_key as key

    return key(" ".join(query_words), *sorted(overrides))


def _cached_get(argv: list[str]) -> int | None:
    """Answer `byquery Q , get KEY` from the memo; None if it must go the long way."""
    if len(argv) < 4 or argv[0] != "byquery" or argv[-2:-1] != ["get"] or argv[-3] != ",":
        return None
    words = argv[1:-3]
    if any(w == "," or (w.startswith("-") and not w.startswith("--")) for w in words):
        return None
    overrides = [w for w in words if w.startswith("--")]
    if any(not o.partition("=")[2] or o.startswith("--work-collection") for o in overrides):
        return None
    return _answer_from_memo([w for w in words if not w.startswith("--")], overrides, argv[-1])


def _answer_from_memo(words: list[str], overrides: list[str], key: str) -> int | None:
    """Read the memoised entry and print its getter; None on a memo miss."""
    from axq.entry import Entry
    from axq.store import Store

    store = Store()
    name = store.memo_lookup(memo_key(words, overrides))
    if not name:
        return None
    entry = Entry.load(store, name)
    emit(entry.get(key), Options())
    return _validity(entry)


def _validity(entry: Any) -> int:
    """Warn and return 1 if the entry is marked invalid by its build, else 0."""
    reason = entry.invalid_reason
    if reason:
        print(f"axq: {entry.name} is marked INVALID: {reason}", file=sys.stderr)
        return 1
    return 0


# -- commands that find an entry ------------------------------------------------------


def find_entry(words: list[str], overrides: list[str], options: Options) -> Any:
    """Run a `byquery` or `byname` stage and return its entry."""
    import axq.api as api
    from axq.progress import Reporter

    command, rest = words[0], words[1:]
    if command == "byname":
        if len(rest) != 1 or overrides:
            raise UsageError("usage: axq byname NAME [, get KEY]")
        return api.byname(rest[0], work_collection=options.work_collection)
    if not rest:
        raise UsageError("usage: axq byquery QUERY [--key=value ...] [, get KEY]")
    reporter = Reporter("quiet" if "--quiet" in options.flags else None)
    return api.byquery(" ".join(rest), parse_overrides(overrides), work_collection=options.work_collection,
                       reporter=reporter, memo=memo_key(rest, overrides))


def entry_stage(entry: Any, words: list[str], options: Options) -> int:
    """Run a stage on an entry: get KEY, get_path, show, remove."""
    verb, args = words[0], words[1:]
    if verb == "get" and len(args) == 1:
        emit(entry.get(args[0]), options)
        return _validity(entry)
    if verb == "get_path" and len(args) <= 1:
        print(os.path.join(str(entry.path), *args))
        return 0
    if verb == "show" and not args:
        return show(entry, options)
    if verb == "remove" and not args:
        return remove([entry.name], options)
    raise UsageError(f"`{' '.join(words)}`: after an entry, use `get KEY`, `get_path`, `show` or `remove`")


# -- commands ---------------------------------------------------------------------


def show(entry: Any, options: Options) -> int:
    """Print an entry's manifest and files (or its build log with --log)."""
    if "--log" in options.flags:
        print((entry.path / "build.log").read_text(), end="")
        return 0
    files = sorted(str(p.relative_to(entry.path)) for p in entry.path.rglob("*") if p.is_file())
    emit({"path": str(entry.path), **entry.manifest, "files": files}, Options() if not options.json else options)
    return 0


def plan(words: list[str], overrides: list[str], options: Options) -> int:
    """Print the dependency graph: cached, or to build and why."""
    import axq.api as api

    steps = api.plan(" ".join(words), parse_overrides(overrides), work_collection=options.work_collection)
    if options.json:
        emit([{"name": s.node.name, "recipe": s.node.producer.recipe.name, "cached": s.cached,
               "reason": s.reason, "depth": s.depth} for s in steps], options)
        return 0
    for step in steps:
        mark = "cached" if step.cached else "build "
        print(f"{'  ' * step.depth}[{mark}] {step.node.name}" + ("" if step.cached else f"  ({step.reason})"))
    return 0


def rules(words: list[str], options: Options) -> int:
    """Print which producer rules match a query and why the others don't."""
    import axq.api as api

    matches = api.rules(" ".join(words))
    if options.json:
        emit([{"rule": m.producer.label, "matches": m.ok, "reason": m.reason, "specificity": m.specificity,
               "unasked": m.unasked} for m in matches], options)
        return 0
    for i, m in enumerate(matches):
        mark = "CHOSEN" if i == 0 and m.ok else "match " if m.ok else "no    "
        print(f"{mark} {m.producer.label}" + (f": {m.reason}" if m.reason else
              f" (specificity {m.specificity}, {m.unasked} fixed not asked for): {m.producer.recipe.description}"))
    return 0


def list_command(words: list[str], options: Options) -> int:
    """Print the entries matching a query as a table (getter values as columns)."""
    import axq.api as api
    from axq.table import entry_rows, format_table

    entries = api.list_entries(" ".join(words), work_collection=options.work_collection)
    columns = [c for c in options.values.get("columns", "").split(",") if c]
    rows = entry_rows(entries, columns, options.values.get("sort"))
    if options.json:
        emit(rows, options)
    elif rows:
        print(format_table(rows))
    else:
        print(f"no entries match `{' '.join(words)}` in {api.where(work_collection=options.work_collection)}",
              file=sys.stderr)
    return 0


def remove(words: list[str], options: Options) -> int:
    """Remove entries by name or query (refusing to break dependents without --force)."""
    import axq.api as api

    if len(words) != 1:
        raise UsageError("usage: axq rm QUERY|NAME [--force]")
    removed = api.remove(words[0], force="--force" in options.flags, work_collection=options.work_collection)
    emit(removed, options) if options.json else print("\n".join(f"removed {n}" for n in removed))
    return 0


def simple(command: str, words: list[str], options: Options) -> int:
    """Run gc, reindex or where."""
    import axq.api as api

    if words:
        raise UsageError(f"`axq {command}` takes no arguments")
    result: Any = {"gc": api.gc, "reindex": api.reindex, "where": api.where}[command](
        work_collection=options.work_collection)
    emit(result, options)
    return 0


def sweep(words: list[str], overrides: list[str], later: list[list[str]], options: Options) -> int:
    """Run a sweep, print its table, write CSV/JSON/PNG; exit 1 if a point failed."""
    from axq import sweeps as sweeping
    from axq.progress import Reporter

    if not words or len(later) != 1 or later[0][0] != "get" or len(later[0]) != 2:
        raise UsageError("usage: axq sweep QUERY-WITH-k:=a:b:c , get KEY[,KEY...] [--csv=F] [--plot=F.png]")
    reporter = Reporter("quiet" if "--quiet" in options.flags else None)
    query, getters = " ".join(words), later[0][1].split(",")
    try:
        rows = sweeping.sweep(query, getters, parse_overrides(overrides),
                              work_collection=options.work_collection, reporter=reporter)
        code = 1 if any(r.get("error") for r in rows) else 0
    except sweeping.SweepInterrupted as stop:
        rows, code = stop.rows, 130
        print(f"axq: sweep interrupted after {len(rows)} points; run it again to resume", file=sys.stderr)
    _sweep_outputs(rows, query, getters, options, sweeping)
    return code


def _sweep_outputs(rows: list[dict], query: str, getters: list[str], options: Options, sweeping: Any) -> None:
    """Print the sweep table (or JSON) and write the files asked for."""
    from axq.query import parse
    from axq.table import format_table

    if options.json:
        emit(rows, options)
    elif rows:
        print(format_table(rows))
    if "csv" in options.values:
        sweeping.write_csv(rows, options.values["csv"])
    if "plot" in options.values and rows:
        x = sweeping.swept_keys(parse(query))[0]
        sweeping.plot(rows, x, getters, options.values["plot"], title=query)


def run_stages(stages: list[list[str]], options: Options) -> int:
    """Dispatch a parsed pipeline."""
    words, overrides = take_options(stages[0], options)
    later = [take_options(stage, options)[0] for stage in stages[1:]]
    if not words:
        raise UsageError(USAGE)
    command, args = words[0], words[1:]
    if command == "sweep":
        return sweep(args, overrides, later, options)
    if command in ("byquery", "byname"):
        entry = find_entry(words, overrides, options)
        code = 0
        for stage in later or [["get_path"]]:
            code = max(code, entry_stage(entry, stage, options))
        return code
    if command == "work_collection" and later == [["remove"]]:
        import axq.api as api

        emit(f"removed {api.wipe(work_collection=options.work_collection)} entries", options)
        return 0
    if later:
        raise UsageError(f"`axq {command}` takes no `, ...` stages")
    return run_command(command, args, overrides, options)


def run_command(command: str, args: list[str], overrides: list[str], options: Options) -> int:
    """Run a single-stage command."""
    if command == "plan":
        return plan(args, overrides, options)
    if overrides:
        raise UsageError(f"unknown option `{overrides[0]}` for `axq {command}`")
    if command == "show":
        import axq.api as api

        if len(args) != 1:
            raise UsageError("usage: axq show NAME [--log]")
        return show(api.byname(args[0], work_collection=options.work_collection), options)
    handlers = {"rules": rules, "list": list_command, "rm": remove}
    if command in handlers:
        return handlers[command](args, options)
    if command in ("gc", "reindex", "where"):
        return simple(command, args, options)
    if command in ("help", "--help", "-h"):
        print(USAGE)
        return 0
    from axq.errors import did_you_mean

    known = [*handlers, "byquery", "byname", "plan", "show", "gc", "reindex", "where", "work_collection"]
    raise UsageError(f"unknown command `{command}`" + did_you_mean(command, known) + " (try `axq --help`)")


def main(argv: list[str] | None = None) -> int:
    """Run one command line; return its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv in ([], ["--help"], ["-h"]):
        print(USAGE)
        return 0 if argv else 2
    debug = "--debug" in argv
    try:
        fast = None if debug else _cached_get(argv)
        return fast if fast is not None else run_stages(split_stages(argv), Options())
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
    sys.exit(main())
