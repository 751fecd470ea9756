"""Declare every axq verb once, with its arguments, options, help and handler.

`VERBS` is the registry: `axq --help` and `axq VERB --help` are generated from it, and a
command line is checked against it before anything runs. A command line is a pipeline of
stages separated by lone `,` words; the first names the verb, later ones act on what it
found (`byquery Q , get KEY`). Options belong to verbs (and to the stages a verb allows),
may appear anywhere on the line, and take their value as `--opt value` or `--opt=value`.
Words `--key=value` that are not options are parameter overrides for the verbs that take
a query (`byquery`, `plan`, `sweep`, `params`), and errors for the others. Global options
(`--work-collection DIR`, `--json`, `--quiet`/`-q`, `--verbose`/`-v`, `--debug`) work with every verb.

Not on the cached-query path: `axq.cli` answers a cached `byquery Q , get KEY` without
importing this module.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from axq.cli import emit, entry_status, query_memo
from axq.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from axq.api import ParamInfo, Step
    from axq.entry import Entry


@dataclass(frozen=True)
class Option:
    """An option: a flag, or one that takes a value (then `metavar` names it)."""

    name: str
    help: str
    metavar: str | None = None

    def usage(self) -> str:
        """Return the option as usage text shows it: `--csv FILE`, `--force`."""
        return self.name + (f" {self.metavar}" if self.metavar else "")


@dataclass(frozen=True)
class Stage:
    """What may follow a verb after a `,`: `get KEY`, `show`, ..."""

    name: str
    args: str
    help: str
    nargs: tuple[int, int] = (0, 0)
    options: tuple[Option, ...] = ()
    handler: Callable[[Entry, list[str], Call], int] | None = None

    def usage(self) -> str:
        """Return `, name ARGS [OPTIONS]`."""
        return ", " + " ".join(w for w in [self.name, self.args, *(f"[{o.usage()}]" for o in self.options)] if w)


@dataclass(frozen=True)
class Verb:
    """A command: `axq NAME ARGS [OPTIONS] [, STAGE ...]`."""

    name: str
    args: str
    help: str
    handler: Callable[[Call], int]
    nargs: tuple[int, int | None] = (0, 0)
    arguments: tuple[tuple[str, str], ...] = ()
    options: tuple[Option, ...] = ()
    overrides: bool = False
    stages: tuple[Stage, ...] = ()
    needs_stage: bool = False

    def usage(self) -> str:
        """Return the one-line usage: `axq plan QUERY [--key=value ...] [--json]`."""
        words = ["axq", self.name, self.args, "[--key=value ...]" if self.overrides else "",
                 *(f"[{o.usage()}]" for o in self.options), self._stage_usage()]
        return " ".join(w for w in words if w)

    def _stage_usage(self) -> str:
        if not self.stages:
            return ""
        listed = " | ".join(s.usage() for s in self.stages)
        return listed if self.needs_stage else f"[{listed}]"

    def accepted(self, stages: list[Stage]) -> dict[str, Option]:
        """Return the options this line may carry: the verb's, its stages' and the global ones."""
        own = [*self.options, *(o for s in stages for o in s.options), *GLOBAL_OPTIONS]
        return {o.name: o for o in own}


@dataclass
class Call:
    """A parsed command line: the verb, its words, options, overrides and later stages."""

    verb: Verb
    words: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    stages: list[tuple[Stage, list[str]]] = field(default_factory=list)

    @property
    def json(self) -> bool:
        return bool(self.options.get("--json"))

    @property
    def work_collection(self) -> str | None:
        return self.options.get("--work-collection")

    @property
    def query(self) -> str:
        """Return the positional words as one query text."""
        return " ".join(self.words)

    def reporter(self) -> Any:
        """Return the progress reporter the options ask for."""
        from axq.progress import Reporter

        return Reporter("quiet" if self.options.get("--quiet") else None, verbose=bool(self.options.get("--verbose")))

    def parsed_overrides(self) -> dict[str, Any]:
        """Turn the `--key=value` overrides into typed values with the query grammar."""
        return parse_overrides(self.overrides)


GLOBAL_OPTIONS = (
    Option("--work-collection", "the work collection (else $AXQ_WORK_COLLECTION, else the default)", "DIR"),
    Option("--json", "machine-readable output"),
    Option("--quiet", "no progress on the screen (the build log keeps it); also -q"),
    Option("--verbose", "show each run's full output (LoadGen's summary) on the screen too; also -v"),
    Option("--debug", "show tracebacks for user errors too"),
    Option("--help", "show this help; also -h"),
)
SHORT = {"-q": "--quiet", "-v": "--verbose", "-h": "--help"}
QUERY_HELP = ("QUERY", "tags and parameters, e.g. `loadgen_output,classified_digits,loadgen_scenario=Offline`")
EXIT_CODES = "Exit codes: 0 success, 1 a build or getter failed, 2 bad usage or query, 130 interrupted."


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn `--key=value` words into typed values with the query grammar."""
    from axq.query import parse_value

    parsed = {}
    for arg in overrides:
        key, text = arg[2:].split("=", 1)
        if not key.isidentifier():
            raise UsageError(f"bad override `{arg}`: expected --key=value")
        parsed[key] = parse_value(text)
    return parsed


# -- stages that act on an entry ----------------------------------------------------------


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


# -- verbs ------------------------------------------------------------------------------------


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


def plan(call: Call) -> int:
    """Print the dependency graph: cached, or to build and why, with expected durations."""
    import axq.api as api

    steps = api.plan(call.query, call.parsed_overrides(), work_collection=call.work_collection)
    if call.json:
        emit([{"name": s.node.name, "recipe": s.node.producer.recipe.name, "cached": s.cached,
               "reason": s.reason, "depth": s.depth, "estimate_s": s.estimate_s, "stale": s.stale}
              for s in steps], True)
        return 0
    for step in steps:
        print(_plan_line(step))
    print(plan_summary(steps))
    return 0


def _plan_line(step: Step) -> str:
    """Format one plan step: `[build ] name  (not built yet; about 12 s)`."""
    indent = "  " * step.depth
    if step.cached:
        return f"{indent}[cached] {step.node.name}"
    notes = [step.reason]
    if step.stale and step.stale not in step.reason:
        notes.append(f"stale: {step.stale}")
    if step.estimate_s is not None:
        basis = f", from {step.estimate_basis}" if step.estimate_basis else ""
        notes.append("about " + duration(step.estimate_s) + basis)
    return f"{indent}[build ] {step.node.name}  ({'; '.join(notes)})"


def plan_summary(steps: list[Step]) -> str:
    """Summarise a plan: `13 to build (12 loadgen_program, 1 mlperf_submission), about 2 h 10 min; 3 cached`."""
    todo = [s for s in steps if not s.cached]
    cached = len(steps) - len(todo)
    if not todo:
        return f"nothing to build; {cached} cached"
    counts: dict[str, int] = {}
    for step in todo:
        counts[step.node.producer.recipe.name] = counts.get(step.node.producer.recipe.name, 0) + 1
    groups = ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    known = [s.estimate_s for s in todo if s.estimate_s is not None]
    total = f", about {duration(sum(known))}" + (" (some unknown)" if len(known) < len(todo) else "") if known else ""
    return f"{len(todo)} to build ({groups}){total}; {cached} cached"


def duration(seconds: float) -> str:
    """Say a duration the way a person would: `12 s`, `3 min`, `2 h 10 min`."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def params(call: Call) -> int:
    """Print the parameters the query's chosen rule takes, where each value comes from."""
    import dataclasses

    import axq.api as api
    from axq.table import format_table

    infos = api.params(call.query, call.parsed_overrides(), work_collection=call.work_collection)
    if call.json:
        emit([dataclasses.asdict(info) for info in infos], True)
    elif infos:
        print(format_table([_param_row(info) for info in infos]))
    else:
        print(f"the rule for `{call.query}` takes no parameters", file=sys.stderr)
    return 0


def _param_row(info: ParamInfo) -> dict[str, Any]:
    """Lay one parameter out as a table row."""
    from axq.query import format_value

    default = "(required)" if info.required else format_value(info.default)
    return {"name": info.name, "type": info.type, "value": format_value(info.value), "from": info.source,
            "default": default, "allowed": _allowed(info), "description": info.description}


def _allowed(info: ParamInfo) -> str:
    """Return a parameter's choices (`a|b|c`) or range (`>= 1`, `0..100`), or `-`."""
    from axq.query import format_value

    if info.choices:
        return "|".join(format_value(c) for c in info.choices)
    low, high = info.minimum, info.maximum
    if low is not None and high is not None:
        return f"{format_value(low)}..{format_value(high)}"
    if low is not None:
        return f">= {format_value(low)}"
    return f"<= {format_value(high)}" if high is not None else "-"


def rules(call: Call) -> int:
    """Print which producer rules match a query and why the others don't."""
    import axq.api as api

    matches = api.rules(call.query, work_collection=call.work_collection)
    if call.json:
        emit([{"rule": m.producer.label, "matches": m.ok, "reason": m.reason, "specificity": m.specificity,
               "unasked": m.unasked, "recipe_path": str(m.producer.recipe.path)} for m in matches], True)
        return 0
    for i, m in enumerate(matches):
        mark = "CHOSEN" if i == 0 and m.ok else "match " if m.ok else "no    "
        print(f"{mark} {m.producer.label}" + (f": {m.reason}" if m.reason else
              f" (specificity {m.specificity}, {m.unasked} fixed not asked for): {m.producer.recipe.description}"
              f"\n         from {m.producer.recipe.path}"))
    return 0


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


def simple(function: str) -> Callable[[Call], int]:
    """Return a handler that prints what `axq.api.<function>(work_collection=...)` returns."""

    def run(call: Call) -> int:
        import axq.api as api

        emit(getattr(api, function)(work_collection=call.work_collection), call.json)
        return 0

    run.__doc__ = f"Print what axq.api.{function} returns."
    return run


def sweep(call: Call) -> int:
    """Run a sweep, print its table, write CSV/PNG; exit 1 if a point failed, 130 if interrupted."""
    from axq import sweeps as sweeping

    getters = call.stages[0][1][0].split(",")
    try:
        run = sweeping.sweep
        if "--on" in call.options:  # on a Ray cluster (axq/cluster.py)
            from axq import cluster

            run = functools.partial(cluster.sweep, address=cluster.address_of(call.options["--on"]))
        rows = run(call.query, getters, call.parsed_overrides(), work_collection=call.work_collection,
                   reporter=call.reporter())
        code = 1 if any(r.get("error") for r in rows) else 0
    except sweeping.SweepInterrupted as stop:
        rows, code = stop.rows, 130
        print(f"axq: sweep interrupted after {len(rows)} points; run it again to resume", file=sys.stderr)
    _sweep_outputs(rows, getters, call)
    return code


def _sweep_outputs(rows: list[dict], getters: list[str], call: Call) -> None:
    """Print the sweep table (or JSON) and write the files asked for."""
    from axq import sweeps as sweeping
    from axq.query import parse
    from axq.table import format_table

    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(rows))
    if "--csv" in call.options:
        sweeping.write_csv(rows, call.options["--csv"])
    if "--plot" in call.options and rows:
        x = sweeping.swept_keys(parse(call.query))[0]
        notes = sweeping.rows_notes(rows, call.work_collection)
        sweeping.plot(rows, x, getters, call.options["--plot"], call.query, notes)


def explore(call: Call) -> int:
    """Score every configuration of a grid; print the table and the best; exit 1 if one failed, 130 if stopped."""
    from axq import exploration as exploring
    from axq import sweeps as sweeping

    try:
        run = exploring.explore
        if "--on" in call.options:  # on a Ray cluster (axq/cluster.py)
            from axq import cluster

            run = functools.partial(cluster.explore, address=cluster.address_of(call.options["--on"]))
        rows = run(call.query, call.parsed_overrides(), target=_target(call), work_collection=call.work_collection,
                   reporter=call.reporter())
        code = 1 if any(r.get("error") for r in rows) else 0
    except sweeping.SweepInterrupted as stop:
        rows, code = stop.rows, 130
        done = f"{len(rows)} configuration" + ("" if len(rows) == 1 else "s")
        print(f"axq: explore interrupted after {done}; run it again to resume", file=sys.stderr)
    _explore_outputs(rows, call)
    return code


def _target(call: Call) -> float | None:
    """Return the --target share of the reference's accuracy (a number in (0, 1]), if given."""
    text = call.options.get("--target")
    if text is None:
        return None
    try:
        share = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise UsageError(f"--target {text}: expected a share of the reference's accuracy, e.g. 0.99 or 99%")
    return share


def _explore_outputs(rows: list[dict], call: Call) -> None:
    """Print the exploration's table and best configuration (or JSON); write the files asked for."""
    from axq import exploration as exploring
    from axq import sweeps as sweeping
    from axq.query import parse
    from axq.table import format_table

    swept = sweeping.swept_keys(parse(call.query))
    if call.json:
        emit(rows, True)
    elif rows:
        print(format_table(exploring.table_rows(rows, swept)))
        print("\n".join(exploring.summary(rows, swept)))
    if "--csv" in call.options:
        sweeping.write_csv(rows, call.options["--csv"])
    if "--plot" in call.options and rows:
        exploring.plot(rows, call.options["--plot"], call.query, exploring.describe(rows, call.work_collection))


ON_RAY = Option("--on", "run the points on a Ray cluster: `ray` (RAY_ADDRESS, else a local Ray) or "
                "`ray://HOST:PORT`", "ray|ray://HOST:PORT")


def export(call: Call) -> int:
    """Write the archive of an entry's closure (axq/archive.py)."""
    from axq import archive

    if "--out" not in call.options:
        raise UsageError(f"usage: {call.verb.usage()} (--out is required)")
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


def wipe(call: Call) -> int:
    """Remove every entry of the work collection."""
    import axq.api as api

    emit(f"removed {api.wipe(work_collection=call.work_collection)} entries", call.json)
    return 0


def set_settings(call: Call) -> int:
    """Set collection settings from KEY=VALUE words (values typed as in queries), or list them."""
    import axq.api as api

    if not call.words:
        return print_settings(api.settings(work_collection=call.work_collection), call.json)
    values = {}
    for word in call.words:
        key, equals, text = word.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"`{word}`: expected KEY=VALUE, e.g. `axq set imagenet_dir=/data/imagenet/val`")
        values[key] = parse_overrides([f"--{key}={text}"])[key]
    return print_settings(api.set_settings(values, work_collection=call.work_collection), call.json)


def unset_settings(call: Call) -> int:
    """Remove collection settings."""
    import axq.api as api

    return print_settings(api.unset_settings(call.words, work_collection=call.work_collection), call.json)


def print_settings(settings: dict[str, Any], as_json: bool) -> int:
    """Print the collection settings: JSON, or one `key=value` a line."""
    from axq.query import format_value

    if as_json:
        emit(settings, True)
    else:
        print("\n".join(f"{k}={format_value(v)}" for k, v in sorted(settings.items())) or "no settings")
    return 0


def help_verb(call: Call) -> int:
    """Print the usage of axq, or of one verb."""
    print(verb_help(find_verb(call.words[0])) if call.words else usage())
    return 0


VERBS: dict[str, Verb] = {v.name: v for v in (
    Verb("byquery", "QUERY", "the entry a query means (built if missing), then what to do with it", byquery,
         (1, None), (QUERY_HELP,), overrides=True, stages=ENTRY_STAGES),
    Verb("byname", "NAME", "an entry by its directory name, then what to do with it", byname, (1, 1),
         (("NAME", "an entry directory name, as `list` shows it"),), stages=ENTRY_STAGES),
    Verb("plan", "QUERY", "dry run: what is cached, what would be built, why, and how long it may take", plan,
         (1, None), (QUERY_HELP,), overrides=True),
    Verb("params", "QUERY", "the parameters the query's rule takes: type, value and its source, default, "
         "choices, description", params, (1, None), (QUERY_HELP,), overrides=True),
    Verb("rules", "QUERY", "which producer rules match a query, and why the others don't", rules, (1, None),
         (QUERY_HELP,)),
    Verb("list", "[QUERY]", "the built entries matching a query, as a table", list_entries, (0, None),
         (QUERY_HELP,), (Option("--columns", "columns to show: getters, results or parameters", "A,B,..."),
                         Option("--sort", "order the rows by this column", "COLUMN"))),
    Verb("show", "NAME", "an entry's manifest, files and provenance", show, (1, 1),
         (("NAME", "an entry directory name"),), (LOG,)),
    Verb("rm", "QUERY|NAME", "remove entries (refuses to break dependents unless --force)", rm, (1, 1),
         (("QUERY|NAME", "the entries to remove"),), (FORCE,)),
    Verb("sweep", "QUERY", "run every point of a sweep (`k:=a:b:c`), reusing cached points, as a table", sweep,
         (1, None), (("QUERY", "a query with at least one swept parameter, e.g. `value:=1:2:4`"),),
         (Option("--csv", "also write the table as CSV", "FILE"),
          Option("--plot", "also plot the getters against the swept parameter", "FILE.png"), ON_RAY),
         overrides=True, stages=(Stage("get", "KEY[,KEY...]", "the getters to tabulate", (1, 1)),),
         needs_stage=True),
    Verb("explore", "QUERY", "score every configuration of a grid: accuracy, performance, the pareto front, the best "
         "at the accuracy target", explore, (1, None),
         (("QUERY", "a query sweeping configurations, e.g. `precision:=fp32:bf16,batch_size:=8:32`"),),
         (Option("--target", "least share of the reference's accuracy (default: the recipe's, often 0.99)",
                 "SHARE"),
          Option("--csv", "also write the rows as CSV", "FILE"),
          Option("--plot", "also plot accuracy against performance, the front highlighted", "FILE.png"), ON_RAY),
         overrides=True),
    Verb("set", "[KEY=VALUE ...]", "set parameter defaults kept in the work collection (alone: list them)",
         set_settings, (0, None), (("KEY=VALUE", "e.g. imagenet_dir=/data/imagenet/val; a query's k=v still wins"),)),
    Verb("unset", "KEY ...", "remove collection settings", unset_settings, (1, None),
         (("KEY", "a setting's name"),)),
    Verb("export", "QUERY|NAME", "write an archive of an entry and every entry it needs (its closure)", export,
         (1, None), (("QUERY|NAME", "an entry name, or a query meaning a built entry"),),
         (Option("--out", "the archive to write (a gzip'd tar)", "FILE"),), overrides=True),
    Verb("import", "FILE", "verify an archive and publish its entries here, skipping those already here",
         import_archive, (1, 1), (("FILE", "an archive written by `axq export`"),)),
    Verb("gc", "", "remove leftovers of failed or killed builds, rebuild the index", simple("gc")),
    Verb("reindex", "", "rebuild the index (finds hand-copied entries)", simple("reindex")),
    Verb("where", "", "print the work collection's path", simple("where")),
    Verb("work_collection", "", "act on the whole work collection", wipe,
         stages=(Stage("remove", "", "remove every entry"),), needs_stage=True),
    Verb("help", "[VERB]", "print this help, or a verb's", help_verb, (0, 1)),
)}


# -- help ----------------------------------------------------------------------------------------


def usage() -> str:
    """Return `axq --help`: every verb from the registry, the global options, the exit codes."""
    width = max(len(v.name) for v in VERBS.values())
    lines = ["usage: axq [GLOBAL OPTIONS] VERB ARGUMENTS [OPTIONS] [, STAGE ...]", "", "verbs:"]
    lines += [f"  {v.name.ljust(width)}  {v.help}" for v in VERBS.values()]
    lines += ["", "global options:", *_option_lines(GLOBAL_OPTIONS), "",
              "Run `axq VERB --help` for a verb's arguments, options and stages.", EXIT_CODES]
    return "\n".join(lines)


def verb_help(verb: Verb) -> str:
    """Return `axq VERB --help`: usage, arguments, options and stages."""
    lines = [f"usage: {verb.usage()}", "", verb.help[0].upper() + verb.help[1:] + "."]
    if verb.arguments or verb.overrides:
        lines += ["", "arguments:", *_pairs([*verb.arguments, *_override_help(verb)])]
    if verb.options:
        lines += ["", "options:", *_option_lines(verb.options)]
    if verb.stages:
        lines += ["", "stages (after a lone `,`):", *_pairs([(s.usage()[2:], s.help) for s in verb.stages])]
    lines += ["", "global options:", *_option_lines(GLOBAL_OPTIONS)]
    return "\n".join(lines)


def _override_help(verb: Verb) -> list[tuple[str, str]]:
    return [("--key=value", "set a parameter, as `key=value` in the query would")] if verb.overrides else []


def _option_lines(options: tuple[Option, ...]) -> list[str]:
    return _pairs([(o.usage(), o.help) for o in options])


def _pairs(pairs: list[tuple[str, str]]) -> list[str]:
    """Align (term, description) pairs in two columns."""
    width = max(len(term) for term, _ in pairs)
    return [f"  {term.ljust(width)}  {text}" for term, text in pairs]


# -- parsing a command line ----------------------------------------------------------------------


def find_verb(name: str) -> Verb:
    """Return the verb called `name`, or raise UsageError with a did-you-mean."""
    if name in VERBS:
        return VERBS[name]
    raise UsageError(f"unknown command `{name}`" + did_you_mean(name, VERBS) + " (try `axq --help`)")


def split_stages(argv: list[str]) -> list[list[str]]:
    """Split argv into stages at lone `,` words."""
    stages: list[list[str]] = [[]]
    for arg in argv:
        if arg == ",":
            stages.append([])
        else:
            stages[-1].append(arg)
    if len(stages) > 1 and not all(stages):
        raise UsageError("empty stage: each `,` must be followed by a command (try `axq --help`)")
    return stages


def parse(argv: list[str]) -> Call | str:
    """Parse a command line into a Call, or return the help text it asks for."""
    stages = split_stages([SHORT.get(arg, arg) for arg in argv])
    if not _first_word(stages[0]):
        if any(_is_help(stage) for stage in stages):
            return usage()
        raise UsageError(usage())
    verb = find_verb(_first_word(stages[0]))
    later = [(_find_stage(verb, stage), stage) for stage in stages[1:]]
    if any(_is_help(stage) for stage in stages):
        return verb_help(verb)
    call = Call(verb, [])
    for index, stage in enumerate(stages):
        words = _take_options(stage, call, [s for s, _ in later])
        if index == 0:
            call.words = words[1:]
        else:
            call.stages.append((later[index - 1][0], words[1:]))
    _check_counts(call)
    return call


def _is_help(stage: list[str]) -> bool:
    return "--help" in stage


def _first_word(stage: list[str]) -> str:
    """Return a stage's first word that is not an option (nor `--work-collection`'s value), or ""."""
    skip = False
    for word in stage:
        if skip or word.startswith("--"):
            skip = word == "--work-collection"
            continue
        return word
    return ""


def _find_stage(verb: Verb, stage: list[str]) -> Stage:
    """Return the stage a later `, ...` names, or raise UsageError saying what may follow the verb."""
    name = _first_word(stage)
    for candidate in verb.stages:
        if candidate.name == name:
            return candidate
    if not verb.stages:
        raise UsageError(f"`axq {verb.name}` takes no `, ...` stages (try `axq {verb.name} --help`)")
    allowed = ", ".join(f"`{(s.name + ' ' + s.args).strip()}`" for s in verb.stages[:-1])
    last = verb.stages[-1]
    allowed = f"{allowed} or `{(last.name + ' ' + last.args).strip()}`" if allowed else f"`{last.name}`"
    raise UsageError(f"`{' '.join(stage)}`: after `axq {verb.name}`, use {allowed}")


def _take_options(stage: list[str], call: Call, stages: list[Stage]) -> list[str]:
    """Record the options and overrides of one stage in call; return its other words."""
    accepted = call.verb.accepted(stages)
    words, rest = [], iter(stage)
    for word in rest:
        if not word.startswith("--"):
            words.append(word)
            continue
        name, eq, value = word.partition("=")
        option = accepted.get(name)
        if option is not None:
            call.options[name] = _option_value(option, value if eq else None, rest)
        elif eq and call.verb.overrides and name[2:] not in _all_option_names():
            call.overrides.append(word)
        else:
            raise UsageError(_unknown_option(call.verb, name, accepted))
    return words


def _option_value(option: Option, value: str | None, rest: Iterator[str]) -> str | bool:
    """Return an option's value: True for a flag, else `=value` or the next word."""
    if option.metavar is None:
        if value is not None:
            raise UsageError(f"option `{option.name}` takes no value (got `{option.name}={value}`)")
        return True
    value = next(rest, None) if value is None else value
    if value is None or value == "":
        raise UsageError(f"option `{option.name}` needs a value: `{option.name} {option.metavar}`")
    return value


def _all_option_names() -> set[str]:
    """Return the names (without dashes) of every option any verb or stage takes."""
    options = [*GLOBAL_OPTIONS, *(o for v in VERBS.values() for o in v.accepted(list(v.stages)).values())]
    return {o.name[2:] for o in options}


def _unknown_option(verb: Verb, name: str, accepted: dict[str, Option]) -> str:
    """Say that a verb takes no such option, with a near miss and the verbs that do take it."""
    message = f"`axq {verb.name}` takes no option `{name}`"
    owners = _owners(name, verb)
    if owners:  # a real option of another verb: no near miss among this verb's options
        takes = "takes" if len(owners) == 1 else "take"
        return f"{message} ({' and '.join(owners[:3])} {takes} it; try `axq {verb.name} --help`)"
    message += did_you_mean(name, accepted)
    if verb.overrides and name[2:].isidentifier():
        message += f"; to set parameter `{name[2:]}`, write `{name}=VALUE`"
    return message + f" (try `axq {verb.name} --help`)"


def _owners(name: str, verb: Verb) -> list[str]:
    """Return where else option `name` is taken: `axq rm`, `axq byquery ... , remove`."""
    found = [f"`axq {v.name}`" for v in VERBS.values() if v is not verb and any(o.name == name for o in v.options)]
    found += [f"`axq {v.name} ... , {s.name}`" for v in VERBS.values() for s in v.stages
              if any(o.name == name for o in s.options)]
    return list(dict.fromkeys(found))


def _check_counts(call: Call) -> None:
    """Check the numbers of positional words of the verb and its stages."""
    verb, (low, high) = call.verb, call.verb.nargs
    if len(call.words) < low or (high is not None and len(call.words) > high):
        raise UsageError(f"usage: {verb.usage()}")
    if verb.needs_stage and len(call.stages) != 1:
        raise UsageError(f"usage: {verb.usage()}")
    for stage, args in call.stages:
        if not stage.nargs[0] <= len(args) <= stage.nargs[1]:
            raise UsageError(f"usage: {verb.usage()}")


def run(argv: list[str]) -> int:
    """Parse a command line and run its verb; return the exit code."""
    parsed = parse(argv)
    if isinstance(parsed, str):
        print(parsed)
        return 0
    return parsed.verb.handler(parsed)
