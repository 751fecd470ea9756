"""Declare what a verb is: its options, the stages that may follow it, and a parsed command line.

The verbs themselves are declared once, in the table of `axq.verbs.registry`, with the
handlers of their families (`axq.verbs.byquery`, `axq.verbs.plan`, ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from axq.errors import UsageError

if TYPE_CHECKING:
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
    reads: bool = False  # reads the work collection: a named one that is missing is an error, not "nothing"

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

        quiet, verbose = bool(self.options.get("--quiet")), bool(self.options.get("--verbose"))
        level = self.query_verbosity()
        if level is not None:  # axs's `verbosity=N` in the query adds to the flags: 0 quiet, 2+ verbose
            quiet, verbose = quiet or level <= 0, verbose or level >= 2
        return Reporter("quiet" if quiet else None, verbose=verbose)

    def query_verbosity(self) -> int | None:
        """Return the verbosity the query sets (axs's `verbosity=N`, where a recipe declares it), or None."""
        if not self.verb.overrides or not self.words:
            return None
        from axq.resolve import kernel_settings

        return kernel_settings(self.query).get("verbosity")

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


def check_readable(call: Call) -> None:
    """Raise WorkCollectionError (exit 1) if the collection a read verb is to read is not a readable folder.

    A collection named on the line (`--work-collection DIR`) must exist: `list` of a mistyped
    path must not answer "no entries match". One from $AXQ_WORK_COLLECTION or the default may
    be missing: it is a collection where nothing is built yet.
    """
    from axq.errors import WorkCollectionError
    from axq.locations import work_collection

    root = work_collection(call.work_collection)
    if not os.path.exists(root):
        if call.work_collection:
            raise WorkCollectionError(f"work collection {root} does not exist (named by --work-collection)")
    elif not os.path.isdir(root):
        raise WorkCollectionError(f"work collection {root} is a file, not a folder")
    elif not os.access(root, os.R_OK | os.X_OK):
        raise WorkCollectionError(f"work collection {root} cannot be read: permission denied")


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
