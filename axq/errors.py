"""Name every failure a user can cause or fix, each with its exit code.

The CLI catches only `AxqError`: it prints `str(error)` (one line, plus a caret line for a
syntax error) and exits with `error.exit_code`. Any other exception is a bug and shows its
traceback.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class AxqError(Exception):
    """Root of every user-facing failure."""

    exit_code = 2


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean `x`?" for a near miss among choices, or ""."""
    import difflib

    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    if not close:
        return ""
    best = difflib.SequenceMatcher(None, word, close[0]).ratio()
    close = [c for c in close if difflib.SequenceMatcher(None, word, c).ratio() >= best - 0.1]  # only the nearest
    return "; did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


class UsageError(AxqError):
    """Bad command line: an unknown command, option or missing argument."""


class QuerySyntaxError(AxqError):
    """A query that does not parse; shows the text with a caret under the bad column."""

    def __init__(self, text: str, column: int, expected: str) -> None:
        self.text, self.column, self.expected = text, column, expected
        super().__init__(text, column, expected)

    def __str__(self) -> str:
        caret = " " * (self.column - 1) + "^"
        return f"bad query at column {self.column}: {self.expected}\n  {self.text}\n  {caret}"


class ManifestError(AxqError):
    """A recipe or entry manifest that breaks the format (names entry and field)."""

    def __init__(self, entry: str, field: str, problem: str) -> None:
        self.entry, self.field, self.problem = entry, field, problem
        super().__init__(entry, field, problem)

    def __str__(self) -> str:
        return f"recipe `{self.entry}`, field `{self.field}`: {self.problem}"


class ParameterError(AxqError):
    """A parameter value that its recipe's declaration (or check) refuses.

    `ParameterError(name, value, problem)` names the parameter; a recipe's cross-parameter
    check may also raise `ParameterError("one line")`.
    """

    def __init__(self, name: str, value: object = None, problem: str = "", rule: str = "") -> None:
        self.name, self.value, self.problem, self.rule = name, value, problem, rule
        super().__init__(name, value, problem)

    def __str__(self) -> str:
        import json

        where = f" for {self.rule}" if self.rule else ""
        if not self.problem:
            return f"bad parameters{where}: {self.name}"
        shown = json.dumps(self.value, default=str) if not isinstance(self.value, str) else self.value
        return f"bad parameter `{self.name}={shown}`{where}: {self.problem}"


class WorkCollectionError(AxqError):
    """A work collection that cannot be used: not creatable, not a directory, not writable, full."""

    exit_code = 1


class NoProducerError(AxqError):
    """No producer rule matches a query."""


class AmbiguousRuleError(AxqError):
    """Two or more producer rules match a query equally well."""


class CycleError(AxqError):
    """Dependencies that lead back to themselves."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(cycle)

    def __str__(self) -> str:
        return "dependency cycle: " + " -> ".join(self.cycle)


class NotFound(AxqError):
    """Something the command line names does not exist: an entry, an archive (exit 2, as a bad query)."""


class EntryNotFound(NotFound):
    """No built entry by that name or query."""


class BuildError(AxqError):
    """A build that failed for a reason the user can act on."""

    exit_code = 1


class GetterError(AxqError):
    """A getter that failed."""

    exit_code = 1


class UnknownGetter(GetterError):
    """A getter the entry does not have: a typo in the query line, so exit 2 as for a query."""

    exit_code = 2


class DependentsError(AxqError):
    """A removal that would break entries built on top of it."""


class Interrupted(AxqError):
    """Ctrl-C during a build: nothing half-built was kept."""

    exit_code = 130
