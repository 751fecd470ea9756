"""Parse query text into frozen `Query` objects, test them, expand sweeps, print them back.

A query is comma-separated conditions (grammar/query.lark holds the lark grammar)::

    query     := [condition ("," condition)*]        whitespace between tokens is ignored
    condition := NAME                  tag present           t
               | ("-"|"!"|"^") NAME    tag absent            -t   !t   ^t
               | NAME ("?"|".")        parameter set         k?   k.
               | ("-"|"!") NAME "?"    parameter not set     -k?  !k?
               | NAME "!."             parameter not set     k!.
               | NAME ("+"|"-")        true / false          k+   k-
               | NAME op value         compare               k=v k!=v k<v k<=v k>v k>=v
               | NAME ("="|"!=") list  membership            k=[a,b]  k!=[a,b]
               | NAME ("==="|"!==") v  compare as text       k===3.10  k!==3.10
               | NAME (":"|"!:") value list holds / lacks    k:v  k!:v
               | NAME "?=" value       k is already v        k?=v
               | NAME ":=" item (":" item)*   sweep          k:=a:b:c  k:=100..1600*2
    list      := "[" [value ("," value)*] "]"
    item      := value | START..END | START..END+STEP | START..END*FACTOR

The axs spellings mean what they mean in axs (its FilterPile): `k+`/`k-` give k the value
true/false and hold when k is truthy/falsy (an unset k is falsy); `k.`/`k!.` are `k?`/`-k?`;
`^t` is `-t`; `k==v` and `k<>v` are `k=v` and `k!=v`; `k===v` is `k='v'` (the text as
typed, never a number) and `k!==v` is `k!='v'`; `k:v`/`k!:v` hold when k is a list that
holds/lacks v (and fail when k is not a list); `k?=v` holds when k is v but, unlike `k=v`,
does not give k a value (in axs a query's `?=` is matched, never assigned). Canonical text
uses axq's own spelling where one means the same (`k.` prints as `k?`, `k===3` as `k='3'`).

Values are typed: int (`-3`), float (`1.5`, `1e-3`, `inf`), bool (`true`/`True`,
`false`/`False`), null (`null`/`None`), quoted strings ('...' or "...", backslash escapes,
always strings: `'100'` is "100"), and bare strings of letters, digits and `_-./:+@~%`
(`cuda:0`, `/data/imagenet`). In a sweep `:` separates items and `..` marks a range, so
such strings must be quoted there. Ranges include their end when hit exactly.

lark is imported only when a query is parsed: the value helpers and `Condition.test` run
on the cached path, which must stay fast.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axq.errors import QuerySyntaxError
from axq.locations import grammar_dir

if TYPE_CHECKING:
    import lark

Value = None | bool | int | float | str | tuple  # a tuple is a list of values

GRAMMAR = Path(grammar_dir()) / "query.lark"
OPS = ("tag", "notag", "=", "!=", "<", "<=", ">", ">=", "set", "unset", "in", "notin", "sweep",
       "true", "false", ":", "!:", "?=")
_ASSIGNED: dict[str, Value] = {"true": True, "false": False}  # ops giving their key a fixed value
MAX_POINTS = 10_000

_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|-?inf|nan")
_BARE = re.compile(r"[A-Za-z0-9_\-./:+@~%]+")
_WORDS: dict[str, Value] = {
    "true": True, "True": True, "false": False, "False": False, "null": None, "None": None,
}
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_RANGE = re.compile(rf"({_NUMBER})\.\.({_NUMBER})(?:([*+])({_NUMBER}))?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


# ---------------------------------------------------------------------------- values


def typed(text: str) -> Value:
    """Return the value a bare word stands for: int, float, bool, null, else the word."""
    if text in _WORDS:
        return _WORDS[text]
    try:
        if _INT.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            return float(text)
    except ValueError:  # an int too long for Python to convert: keep the digits
        pass
    return text


def unquote(text: str) -> str:
    """Return the string inside quotes, with backslash escapes resolved."""
    return re.sub(r"\\([\s\S])", lambda m: _ESCAPES.get(m[1], m[1]), text[1:-1])


def quote(text: str) -> str:
    """Return text single-quoted, with backslash escapes for `\\`, `'` and line breaks."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    for letter, char in _ESCAPES.items():
        escaped = escaped.replace(char, "\\" + letter)
    return f"'{escaped}'"


def format_value(value: Value) -> str:
    """Return the canonical text of a value, which `parse_value` reads back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    if isinstance(value, str):
        bare = _BARE.fullmatch(value) and typed(value) == value
        return value if bare else quote(value)
    raise TypeError(f"not a query value: {value!r}")


def _format_item(value: Value) -> str:
    """Return a sweep item's text: quoted where `:` or `..` would split or range it."""
    text = format_value(value)
    if isinstance(value, str) and text == value and (":" in text or ".." in text):
        return quote(value)
    return text


def parse_value(text: str) -> Value:
    """Parse one value as typed after `=`: "100" -> 100, "'100'" -> "100", "[a,b]" -> tuple."""
    return _parse(text, "value")


def same(a: Any, b: Any) -> bool:
    """Say whether two values are "="-equal: bools equal only bools, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _items(value: Value) -> tuple[Value, ...]:
    """Return a list value's items (and nothing for a scalar)."""
    return tuple(value) if isinstance(value, (tuple, list)) else ()


def _strict(value: Value) -> object:
    """Return a key equal only for values of the same type and text (for ==, hash)."""
    if isinstance(value, (tuple, list)):
        return tuple(_strict(item) for item in value)
    return (type(value).__name__, repr(value) if isinstance(value, float) else value)


def _comparable(a: Any, b: Any) -> bool:
    """Say whether `<` and friends apply: both numbers (not bools) or both strings."""
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    return (number(a) and number(b)) or (isinstance(a, str) and isinstance(b, str))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class Condition:
    """One condition on an entry's tags or parameters, e.g. `-t`, `k>=2`, `k:=1:2`."""

    key: str
    op: str
    value: Value = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown condition operator {self.op!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, str, object]:
        return (self.key, self.op, _strict(self.value))

    def test(self, tags: Collection[str], params: Mapping[str, Value]) -> bool:
        """Say whether an entry with these tags and resolved params meets the condition."""
        if self.op in ("tag", "notag"):
            return (self.key in tags) == (self.op == "tag")
        if self.op == "sweep":
            raise ValueError(f"cannot test sweep `{self}`: expand the query first")
        return self._test_param(self.key in params, params.get(self.key))

    def _test_param(self, present: bool, actual: Value) -> bool:
        """Apply a parameter operator to the actual value (present or not)."""
        op, value = self.op, self.value
        if op in ("set", "unset"):
            return (present and actual is not None) == (op == "set")
        if op in ("=", "!="):
            return (present and same(actual, value)) == (op == "=")
        if op in ("in", "notin"):
            hit = present and any(same(actual, item) for item in _items(value))
            return hit == (op == "in")
        return self._test_axs(present, actual)

    def _test_axs(self, present: bool, actual: Value) -> bool:
        """Apply an operator axq takes from axs, or a comparison, to the actual value."""
        op, value = self.op, self.value
        if op in ("true", "false"):
            return bool(actual) == (op == "true")
        if op in (":", "!:"):
            holds = any(same(item, value) for item in _items(actual))
            return isinstance(actual, (tuple, list)) and holds == (op == ":")
        if op == "?=":
            return present and same(actual, value)
        return present and _comparable(actual, value) and _COMPARE[op](actual, value)

    def __str__(self) -> str:
        key, op, value = self.key, self.op, self.value
        text = {
            "tag": lambda: key,
            "notag": lambda: f"-{key}",
            "set": lambda: f"{key}?",
            "unset": lambda: f"-{key}?",
            "true": lambda: f"{key}+",
            "false": lambda: f"{key}-",
            "in": lambda: f"{key}={format_value(value)}",
            "notin": lambda: f"{key}!={format_value(value)}",
            "sweep": lambda: f"{key}:=" + ":".join(_format_item(v) for v in _items(value)),
        }.get(op, lambda: f"{key}{op}{format_value(value)}")
        return text()


@dataclass(frozen=True)
class Query:
    """Conditions, in the order typed, that an entry must all meet."""

    conditions: tuple[Condition, ...] = ()

    def _keys(self, op: str) -> tuple[str, ...]:
        return tuple(c.key for c in self.conditions if c.op == op)

    @property
    def tags(self) -> tuple[str, ...]:
        """Return the tags the entry must have, in order."""
        return self._keys("tag")

    @property
    def absent_tags(self) -> tuple[str, ...]:
        """Return the tags the entry must not have, in order."""
        return self._keys("notag")

    @property
    def assignments(self) -> dict[str, Value]:
        """Return the values the query gives parameters (`k=v`, `k+`, `k-`) as a dict."""
        given = ("=", *_ASSIGNED)
        return {c.key: _ASSIGNED.get(c.op, c.value) for c in self.conditions if c.op in given}

    @property
    def param_conditions(self) -> tuple[Condition, ...]:
        """Return every condition on a parameter (all but tag and absent-tag ones)."""
        return tuple(c for c in self.conditions if c.op not in ("tag", "notag"))

    @property
    def is_sweep(self) -> bool:
        """Say whether the query sweeps a parameter and so stands for several queries."""
        return any(c.op == "sweep" for c in self.conditions)

    def expand(self) -> list[Query]:
        """Return one query per point of the sweeps' product (first key varies slowest)."""
        if not self.is_sweep:
            return [self]
        choices = [self._choices(c) for c in self.conditions]
        return [Query(tuple(point)) for point in itertools.product(*choices)]

    @staticmethod
    def _choices(condition: Condition) -> list[Condition]:
        """Return the conditions a sweep stands for, or the condition itself."""
        if condition.op != "sweep":
            return [condition]
        return [Condition(condition.key, "=", v) for v in _items(condition.value)]

    def test(self, tags: Collection[str], params: Mapping[str, Value]) -> bool:
        """Say whether every condition holds (a sweep must be expanded first)."""
        if self.is_sweep:
            raise ValueError(f"cannot test sweep query `{self}`: expand it first")
        return all(c.test(tags, params) for c in self.conditions)

    def __str__(self) -> str:
        return ",".join(str(c) for c in self.conditions)


# ---------------------------------------------------------------------------- ranges


def _range_number(text: str, column: int, source: str) -> Fraction:
    """Read a range bound exactly, refusing exponents too large to be a useful bound."""
    exponent = re.search(r"[eE]([-+]?[0-9]+)$", text)
    if exponent and abs(int(exponent[1])) > 308:
        raise QuerySyntaxError(source, column, f"range bound `{text}` is out of range")
    return Fraction(text)


def expand_range(text: str, column: int = 1, source: str | None = None) -> list[Value]:
    """Return the points of a range like `1..4`, `100..400+100` or `100..1600*2`."""
    source = text if source is None else source
    match = _RANGE.fullmatch(text)
    if not match:
        expected = f"a numeric range like `100..1600*2`, not `{text}`"
        raise QuerySyntaxError(source, column, "expected " + expected)
    start, end, kind, by = match.groups()
    first, last, step = (_range_number(t, column, source) for t in (start, end, by or "1"))
    points = _points(first, last, step, kind or "+", lambda why: QuerySyntaxError(source, column, why))
    as_float = any(t and not _INT.fullmatch(t) for t in (start, end, by))
    return [float(p) if as_float else int(p) for p in points]


def _points(
    start: Fraction, end: Fraction, by: Fraction, kind: str, error: Callable[[str], Exception]
) -> Iterator[Fraction]:
    """Yield a range's points exactly, after checking it is finite and not empty."""
    if start > end:
        raise error("empty range: its start is after its end")
    if kind == "+":
        if by <= 0:
            raise error("range step must be positive")
        count = math.floor((end - start) / by) + 1
        if count > MAX_POINTS:
            raise error(f"range has {count} points, more than {MAX_POINTS:,}")
        return (start + i * by for i in range(count))
    if by <= 1 or start <= 0:
        raise error("geometric range needs a start above 0 and a factor above 1")
    return iter(_geometric(start, end, by, error))


def _geometric(
    start: Fraction, end: Fraction, factor: Fraction, error: Callable[[str], Exception]
) -> list[Fraction]:
    """Return start, start*factor, ... up to end, at most MAX_POINTS of them."""
    points: list[Fraction] = []
    while start <= end:
        if len(points) == MAX_POINTS:
            raise error(f"range has more than {MAX_POINTS:,} points")
        points.append(start)
        start *= factor
    return points


# ---------------------------------------------------------------------------- parsing


@functools.cache
def _parser() -> lark.Lark:
    """Build the LALR parser once, importing lark only now."""
    import lark

    return lark.Lark.open(
        str(GRAMMAR), parser="lalr", start=["query", "value"], maybe_placeholders=False
    )


def parse(text: str) -> Query:
    """Parse query text; raise QuerySyntaxError (and nothing else) if it is not one."""
    query = _parse(text, "query")
    assert isinstance(query, Query)
    return query


def _parse(text: str, start: str) -> Any:
    """Parse text from a start rule and transform it, turning lark errors into ours."""
    from lark.exceptions import UnexpectedInput, VisitError

    parser = _parser()
    try:
        tree = parser.parse(text, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(text, error, parser) from None
    try:
        return _transformer_class()(text).transform(tree)
    except VisitError as error:
        raise error.orig_exc from None


_SPELLINGS = {"==": "=", "<>": "!="}  # axs's other spellings of axq operators


@functools.cache
def _transformer_class() -> type:
    """Return the Transformer class, defined on first use so lark loads lazily."""
    import lark

    class ToModel(lark.Transformer[Any, Any]):
        """Turn a parse tree into `Query`, `Condition` and plain values."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

        NAME = TEXT = staticmethod(str)
        BARE = SWEEP_WORD = staticmethod(lambda token: typed(str(token)))
        STRING = staticmethod(lambda token: unquote(str(token)))

        def RANGE(self, token: lark.Token) -> list[Value]:  # named after the terminal
            column = (token.start_pos or 0) + 1
            return expand_range(str(token), column, self.text)

        def query(self, conditions: list[Condition]) -> Query:
            return Query(tuple(conditions))

        def value(self, children: list[Value]) -> Value:
            return children[0]

        def listing(self, items: list[Value]) -> tuple[Value, ...]:
            return tuple(items)

        def op(self, children: list[lark.Token]) -> str:
            return _SPELLINGS.get(str(children[0]), str(children[0]))

        def points(self, items: list[Any]) -> tuple[Value, ...]:
            return tuple(itertools.chain(*(i if isinstance(i, list) else [i] for i in items)))

        def tag(self, c: list[Any]) -> Condition:
            return Condition(c[0], "tag")

        def notag(self, c: list[Any]) -> Condition:
            return Condition(c[0], "notag")

        def set(self, c: list[Any]) -> Condition:
            return Condition(c[0], "set")

        def unset(self, c: list[Any]) -> Condition:
            return Condition(c[0], "unset")

        def true(self, c: list[Any]) -> Condition:
            return Condition(c[0], "true")

        def false(self, c: list[Any]) -> Condition:
            return Condition(c[0], "false")

        def compare(self, c: list[Any]) -> Condition:
            return Condition(c[0], c[1], c[2])

        def text_equal(self, c: list[Any]) -> Condition:
            return Condition(c[0], "=", c[1])

        def text_unequal(self, c: list[Any]) -> Condition:
            return Condition(c[0], "!=", c[1])

        def given(self, c: list[Any]) -> Condition:
            return Condition(c[0], "?=", c[1])

        def has(self, c: list[Any]) -> Condition:
            return Condition(c[0], ":", c[1])

        def lacks(self, c: list[Any]) -> Condition:
            return Condition(c[0], "!:", c[1])

        def member(self, c: list[Any]) -> Condition:
            return Condition(c[0], "in", c[1])

        def nonmember(self, c: list[Any]) -> Condition:
            return Condition(c[0], "notin", c[1])

        def sweep(self, c: list[Any]) -> Condition:
            return Condition(c[0], "sweep", c[1])

    return ToModel


# ---------------------------------------------------------------------------- errors

_OPERATORS = ("=", "==", "!=", "<>", "<", "<=", ">", ">=", ":=",  # literals after a name
              "===", "!==", "?=", "!:", "+", "-", ".", "!.")
_PHRASES = {  # terminal (name or literal) -> words, in the order messages list them
    "NAME": "a tag or parameter name",
    "BARE": "a value", "STRING": "a value", "TEXT": "a value", "[": "a value",
    "SWEEP_WORD": "a value or range", "RANGE": "a value or range",
    **dict.fromkeys(_OPERATORS, "an operator like `=`"),
    "?": "`?`", ":": "`:`", "]": "`]`", ",": "`,`", "$END": "the end of the query",
    "_NOT": "", "_COMMA": "`,`",
}
_OPERATOR_BEFORE = re.compile(r"(===|!==|:=|!=|<=|>=|==|<>|\?=|!:|=|<|>|:)\s*$")


def _syntax_error(text: str, error: Any, parser: lark.Lark) -> QuerySyntaxError:
    """Turn a lark UnexpectedInput into a QuerySyntaxError with column and words."""
    token = getattr(error, "token", None)
    if token is None and hasattr(error, "pos_in_stream"):
        position = error.pos_in_stream
    elif token is not None and token.type != "$END":
        position = token.start_pos
    else:
        position = len(text)
    state = getattr(error, "state", None)
    if state is not None and hasattr(state, "parse_conf"):
        names = _acceptable(state)
    else:
        names = getattr(error, "allowed", None) or getattr(error, "expected", None) or set()
    expected = _expected(names, parser, text[:position]) + _axs_only(text, position) + _stage_hint(text, position)
    return QuerySyntaxError(text, position + 1, expected)


_GLUED_COMMA = re.compile(r",\s+([^\s,]+)\s+$")  # `...Offline, get ` before the bad spot


def _stage_hint(text: str, position: int) -> str:
    """Return a hint when a comma glued to the query (`...Offline, get accuracy`) was meant to start a stage."""
    glued = _GLUED_COMMA.search(text[:position])
    return stage_hint(glued[1]) if glued else ""


def stage_hint(word: str) -> str:
    """Return the hint for a comma glued to the query before a stage's word: write ` , `."""
    return f" (to end the query before `{word}`, write ` , ` with a space on each side)"


def _axs_only(text: str, position: int) -> str:
    """Return a note when the bad spot is an axs operator axq lacks (query masking `t-:q`)."""
    if text.startswith(":", position) and re.search(r"[A-Za-z0-9_]-$", text[:position]):
        return " (axs's query masking `tag-:query` is not part of axq)"
    return ""


def _acceptable(state: Any) -> set[str]:
    """Return the terminals the parser really takes next, trying each on a copy.

    The parse table alone over-promises: LALR merges states, so after `k=1` it would also
    offer the `]` that only a list item may be followed by.
    """
    import copy

    import lark
    from lark.exceptions import UnexpectedToken

    conf = copy.copy(state.parse_conf)
    conf.callbacks = {}
    accepted = set()
    for name in filter(str.isupper, state.parse_conf.parse_table.states[state.position]):
        trial = state.copy(deepcopy_values=False)
        trial.parse_conf = conf
        try:
            trial.feed_token(lark.Token(name, ""), is_end=name == "$END")
        except UnexpectedToken:
            continue
        accepted.add(name)
    return accepted


def _expected(names: Collection[str], parser: lark.Lark, before: str) -> str:
    """Say in words what the parser would have accepted, never naming terminals."""
    words = [_phrase(name, parser) for name in names]
    order = list(dict.fromkeys(_PHRASES.values()))
    distinct = {w for w in words if w}
    if "a value or range" in distinct:
        distinct.discard("a value")
    if "an operator like `=`" in distinct:  # after a name, `:` is the list-holds operator
        distinct.discard("`:`")
    phrases = sorted(distinct, key=lambda w: order.index(w) if w in order else 99)
    if not phrases:
        return "unexpected input"
    text = ", ".join(phrases[:-1]) + (" or " if len(phrases) > 1 else "") + phrases[-1]
    operator = _OPERATOR_BEFORE.search(before)
    if operator and phrases[0].startswith("a value"):
        text += f" after `{operator[1]}`"
    return "expected " + text


def _phrase(name: str, parser: lark.Lark) -> str:
    """Return the words for one terminal, looked up by name or by its literal text."""
    if name in _PHRASES:
        return _PHRASES[name]
    try:
        pattern = parser.get_terminal(name).pattern
    except KeyError:
        return "something else"
    if pattern.type == "str":
        return _PHRASES.get(pattern.value, f"`{pattern.value}`")
    return "something else"
