"""Declare every axq verb once, with its arguments, options, help and handler; read a command line against them.

`VERBS` is the registry: `axq --help` and `axq VERB --help` are generated from it, and a
command line is checked against it before anything runs. The handlers live with their
families (`axq.verbs.byquery`, `.plan`, `.listing`, `.sweep`, `.export`, `.collection`).
"""

from __future__ import annotations

from collections.abc import Iterator

from axq.errors import NoProducerError, UsageError, did_you_mean
from axq.verbs.byquery import ENTRY_STAGES, FORCE, LOG, byname, byquery, rm, show
from axq.verbs.collection import gc, set_settings, simple, unset_settings, wipe
from axq.verbs.command import (
    EXIT_CODES,
    GLOBAL_OPTIONS,
    QUERY_HELP,
    SHORT,
    Call,
    Option,
    Stage,
    Verb,
    check_readable,
)
from axq.verbs.export import export, import_archive
from axq.verbs.listing import list_entries
from axq.verbs.plan import params, plan, rules
from axq.verbs.sweep import ON_RAY, explore, sweep


def help_verb(call: Call) -> int:
    """Print the usage of axq, or of one verb."""
    print(verb_help(find_verb(call.words[0])) if call.words else usage())
    return 0


VERBS: dict[str, Verb] = {v.name: v for v in (
    Verb("byquery", "QUERY", "the entry a query means (built if missing), then what to do with it", byquery,
         (1, None), (QUERY_HELP,), overrides=True, stages=ENTRY_STAGES),
    Verb("byname", "NAME", "an entry by its directory name, then what to do with it", byname, (1, 1),
         (("NAME", "an entry directory name, as `list` shows it"),), stages=ENTRY_STAGES, reads=True),
    Verb("plan", "QUERY", "dry run: what is cached, what would be built, why, and how long it may take", plan,
         (1, None), (QUERY_HELP,), overrides=True),
    Verb("params", "QUERY", "the parameters the query's rule takes: type, value and its source, default, "
         "choices, description", params, (1, None), (QUERY_HELP,), overrides=True),
    Verb("rules", "QUERY", "which producer rules match a query, and why the others don't", rules, (1, None),
         (QUERY_HELP,)),
    Verb("list", "[QUERY]", "the built entries matching a query, as a table", list_entries, (0, None),
         (QUERY_HELP,), (Option("--columns", "columns to show: getters, results or parameters", "A,B,..."),
                         Option("--sort", "order the rows by this column", "COLUMN")), reads=True),
    Verb("show", "NAME", "an entry's manifest, files and provenance", show, (1, 1),
         (("NAME", "an entry directory name"),), (LOG,), reads=True),
    Verb("rm", "QUERY|NAME", "remove entries (refuses to break dependents unless --force)", rm, (1, 1),
         (("QUERY|NAME", "the entries to remove"),), (FORCE,), reads=True),
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
         (Option("--out", "the archive to write (a gzip'd tar)", "FILE"),), overrides=True, reads=True),
    Verb("import", "FILE", "verify an archive and publish its entries here, skipping those already here",
         import_archive, (1, 1), (("FILE", "an archive written by `axq export`"),)),
    Verb("gc", "", "remove leftovers of failed or killed builds, rebuild the index", gc, reads=True),
    Verb("reindex", "", "rebuild the index (finds hand-copied entries)", simple("reindex"), reads=True),
    Verb("where", "", "print the work collection's path", simple("where")),
    Verb("work_collection", "", "act on the whole work collection", wipe,
         stages=(Stage("remove", "", "remove every entry"),), needs_stage=True),
    Verb("help", "[VERB]", "print this help, or a verb's", help_verb, (0, 1)),
)}


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
    if parsed.verb.reads:
        check_readable(parsed)
    try:
        return parsed.verb.handler(parsed)
    except NoProducerError as error:
        stage = glued_stage(parsed)
        if stage is None:
            raise
        from axq.query import stage_hint

        raise NoProducerError(f"{error}{stage_hint(stage)}") from None


def glued_stage(call: Call) -> str | None:
    """Return the stage a comma glued to the query was meant to start (`...Offline, show`), or None."""
    names = {stage.name for stage in call.verb.stages}
    for before, word in zip(call.words, call.words[1:], strict=False):
        if before.endswith(",") and word in names:
            return word
    return None
