"""Test the query language: parsing, canonical printing, typing, errors, tests and sweeps."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axq.errors import QuerySyntaxError
from axq.query import Condition, Query, Value, format_value, parse, parse_value

# ---------------------------------------------------------------------------- round trips

CANONICAL = [
    ("", ""),
    ("   ", ""),
    ("a", "a"),
    (" a , -b,k=1 ", "a,-b,k=1"),
    ("a,!b", "a,-b"),
    ("k = 1", "k=1"),
    ("k?,-k?,!j?", "k?,-k?,-j?"),
    ("k!=3,k<3,k<=3,k>3,k>=3", "k!=3,k<3,k<=3,k>3,k>=3"),
    ("device=cuda:0,path=/data/imagenet", "device=cuda:0,path=/data/imagenet"),
    ("x=a-b.c,m=AccuracyOnly", "x=a-b.c,m=AccuracyOnly"),
    ("k=True,j=False,n=None", "k=true,j=false,n=null"),
    ("k=\"100\",j='x y'", "k='100',j='x y'"),
    ("k=1.50,j=1e-3", "k=1.5,j=0.001"),
    ("k=[a, 'b c', 3]", "k=[a,'b c',3]"),
    ("k!=[1,2],j=[]", "k!=[1,2],j=[]"),
    ("k:=a:b:c", "k:=a:b:c"),
    ("k:=100..1600*2", "k:=100:200:400:800:1600"),
    ("k:=100..400+100", "k:=100:200:300:400"),
    ("k:=1..4", "k:=1:2:3:4"),
    ("k:=0:1..3:'x:y'", "k:=0:1:2:3:'x:y'"),
    ("k:='1..2'", "k:='1..2'"),
    ("k:=0.5..2*2", "k:=0.5:1.0:2.0"),
    ("k:=0.1..0.3+0.1", "k:=0.1:0.2:0.3"),
]

AXS_CANONICAL = [  # axs's spellings, printed as axq's where one means the same
    ("accuracy+,dry_run-", "accuracy+,dry_run-"),
    ("k.,j!.", "k?,-j?"),
    ("^t,-u,!v", "-t,-u,-v"),
    ("k==1,j<>2", "k=1,j!=2"),
    ("k==[1,a],j<>[]", "k=[1,a],j!=[]"),
    ("v===3.10,w===x,n===null", "v='3.10',w=x,n='null'"),
    ("v!==3.10,w!==x", "v!='3.10',w!=x"),
    ("k===it's,j===a=b", "k='it\\'s',j='a=b'"),
    ("k === 'a b' , j !== \"1\"", "k='a b',j!='1'"),
    ("k:v,j!:3,m:cuda:0,n:'a,b'", "k:v,j!:3,m:cuda:0,n:'a,b'"),
    ("k?=1,j?=x,n?='1'", "k?=1,j?=x,n?='1'"),
    ("loadgen_output,accuracy+,v===3.11,k:=1:2", "loadgen_output,accuracy+,v='3.11',k:=1:2"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL + AXS_CANONICAL)
def test_canonical_form(text: str, canonical: str) -> None:
    """Print a parsed query in canonical form, which parses back to itself."""
    query = parse(text)
    assert str(query) == canonical
    assert parse(str(query)) == query
    assert str(parse(str(query))) == canonical


def test_conditions_and_views() -> None:
    """Split a query into tags, absent tags, assignments and parameter conditions."""
    query = parse("a,-b,k=1,j?,c,m:=1:2")
    assert query.tags == ("a", "c")
    assert query.absent_tags == ("b",)
    assert query.assignments == {"k": 1}
    assert [str(c) for c in query.param_conditions] == ["k=1", "j?", "m:=1:2"]
    assert query.is_sweep and not parse("a,k=1").is_sweep
    assert query.conditions[0] == Condition("a", "tag")


def test_axs_operators_views() -> None:
    """Give values with `k+`, `k-` and `k===v` only; count `^t` as an absent tag."""
    query = parse("a,^b,x+,y-,v===3.10,w?=1,l:p,m!:q,s.,u!.")
    assert query.tags == ("a",) and query.absent_tags == ("b",)
    assert query.assignments == {"x": True, "y": False, "v": "3.10"}
    assert [c.key for c in query.param_conditions] == ["x", "y", "v", "w", "l", "m", "s", "u"]
    assert [c.op for c in query.param_conditions] == ["true", "false", "=", "?=", ":", "!:", "set", "unset"]
    assert parse("k+") != parse("k=true") and parse("k.") == parse("k?")


# ---------------------------------------------------------------------------- values

TYPED: list[tuple[str, Value]] = [
    ("100", 100),
    ("-3", -3),
    ("1.5", 1.5),
    ("-0.25", -0.25),
    ("1e-3", 0.001),
    ("2.0", 2.0),
    ("inf", math.inf),
    ("true", True),
    ("True", True),
    ("false", False),
    ("False", False),
    ("null", None),
    ("None", None),
    ("'100'", "100"),
    ('"true"', "true"),
    ("'it\\'s'", "it's"),
    ("'a\\nb'", "a\nb"),
    ("cuda:0", "cuda:0"),
    ("/data/imagenet", "/data/imagenet"),
    ("3.10.1", "3.10.1"),
    ("+5", "+5"),
    ("a@b~c%d", "a@b~c%d"),
    ("[1, a]", (1, "a")),
]


@pytest.mark.parametrize(("text", "value"), TYPED)
def test_parse_value_types(text: str, value: Value) -> None:
    """Type a value as typed after `=`, keeping quoted values strings."""
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)
    assert parse(f"k={text}").conditions[0].value == value


@pytest.mark.parametrize(
    "value", [None, True, False, 0, -7, 1.5, 1e-5, 1e16, -0.0, "", "100", "true", "None",
              "1.5", "a,b", "it's", 'say "hi"', "a b", "x=y", "[x]", "back\\slash",
              "line\nbreak", "cuda:0", "-", "?", "ü", "1..2", "inf"],
)
def test_format_value_round_trip(value: Value) -> None:
    """Print a value so that parsing it back gives the same value of the same type."""
    parsed = parse_value(format_value(value))
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [("100", "'100'"), ("it's", "'it\\'s'"), ("", "''"), ("cuda:0", "cuda:0"), (True, "true"),
     (None, "null"), (("a", 1), "[a,1]")],
)
def test_format_value_text(value: Value, text: str) -> None:
    """Quote strings only where bare text would read differently."""
    assert format_value(value) == text


# ---------------------------------------------------------------------------- errors

ERRORS = [
    ("a,", 3, "expected a tag or parameter name"),
    ("k=", 3, "expected a value after `=`"),
    ("k>=", 4, "expected a value after `>=`"),
    ("k=1 x", 5, "expected `,` or the end of the query"),
    ("k===", 5, "expected a value after `===`"),
    ("k!==,a", 5, "expected a value after `!==`"),
    ("k:", 3, "expected a value after `:`"),
    ("k!:[1]", 4, "expected a value after `!:`"),
    ("k?=", 4, "expected a value after `?=`"),
    ("k==", 4, "expected a value after `==`"),
    ("k+1", 3, "expected `,` or the end of the query"),
    ("k.x", 3, "expected `,` or the end of the query"),
    ("^k=1", 3, "`?`"),
    ("t-:a,b", 3, "query masking `tag-:query` is not part of axq"),
    ("a b", 3, "expected an operator like `=`, `?`, `,` or the end of the query"),
    ("a b", 3, "an operator"),
    ("a,,b", 3, "expected a tag or parameter name"),
    ("1a", 1, "tag or parameter name"),
    ("-k=1", 3, "`?`"),
    ("k=[a,", 6, "expected a value"),
    ("k=[a b", 6, "`]`"),
    ("k<[1]", 3, "a value after `<`"),
    ("k:=", 4, "a value or range"),
    ("k:=a:b c", 8, "`:`"),
    ("k=a#", 4, "end of the query"),
    ("a,é", 3, "tag or parameter name"),
    ("k:=5..1", 4, "empty range"),
    ("k:=1..4+0", 4, "step must be positive"),
    ("k:=1..4*1", 4, "factor above 1"),
    ("k:=0..4*2", 4, "start above 0"),
    ("k:=a..b", 4, "numeric range"),
    ("x,k:=1..100000", 6, "more than 10,000"),
    ("k:=1..10000000000*1.0001", 4, "more than 10,000"),
    ("k:=1e999..2", 4, "out of range"),
]


@pytest.mark.parametrize(("text", "column", "fragment"), ERRORS)
def test_syntax_errors(text: str, column: int, fragment: str) -> None:
    """Point at the bad column and say in words what was expected."""
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert caught.value.column == column
    assert fragment in caught.value.expected
    assert "__ANON" not in str(caught.value) and "NAME" not in str(caught.value)
    assert str(caught.value).splitlines()[-1] == "  " + " " * (column - 1) + "^"


def test_parse_does_not_leak_lark_objects() -> None:
    """Hand back only plain values and dataclasses, never lark trees or tokens."""
    query = parse("a,k=x,j=[1,b],m:=p:q")
    values = [c.value for c in query.conditions]
    assert [type(c.key) for c in query.conditions] == [str] * 4
    assert values == [None, "x", (1, "b"), ("p", "q")]
    swept = query.conditions[3].value
    assert isinstance(swept, tuple) and all(type(v) is str for v in (values[1], *swept))


# ---------------------------------------------------------------------------- test()

SEMANTICS = [
    ("a", {}, True),
    ("z", {}, False),
    ("-z", {}, True),
    ("-a", {}, False),
    ("k=1", {"k": 1}, True),
    ("k=1", {"k": 1.0}, True),
    ("k=1", {"k": True}, False),
    ("k=true", {"k": 1}, False),
    ("k=1", {}, False),
    ("k='1'", {"k": 1}, False),
    ("k!=1", {}, True),
    ("k!=1", {"k": 2}, True),
    ("k!=1", {"k": 1}, False),
    ("k=null", {"k": None}, True),
    ("k=null", {}, False),
    ("k<2", {"k": 1}, True),
    ("k<=1", {"k": 1.0}, True),
    ("k>2", {"k": 1}, False),
    ("k>=a", {"k": "b"}, True),
    ("k<2", {"k": "1"}, False),
    ("k<2", {"k": True}, False),
    ("k>0", {"k": None}, False),
    ("k>0", {}, False),
    ("k?", {"k": 0}, True),
    ("k?", {"k": None}, False),
    ("k?", {}, False),
    ("-k?", {}, True),
    ("-k?", {"k": None}, True),
    ("-k?", {"k": False}, False),
    ("k=[1,2]", {"k": 2}, True),
    ("k=[1,2]", {"k": 3}, False),
    ("k=[1,2]", {"k": True}, False),
    ("k=[1,2]", {}, False),
    ("k!=[1,2]", {"k": 3}, True),
    ("k!=[1,2]", {"k": 1}, False),
    ("k!=[1,2]", {}, True),
    ("k=[a,b]", {"k": ["a", "b"]}, False),
    ("a,k=1,j?", {"k": 1, "j": "x"}, True),
    ("a,k=1,j?", {"k": 1}, False),
]

AXS_SEMANTICS = [  # as axs's FilterPile evaluates them
    ("k+", {"k": True}, True),
    ("k+", {"k": 1}, True),
    ("k+", {"k": "no"}, True),
    ("k+", {"k": 0}, False),
    ("k+", {"k": None}, False),
    ("k+", {}, False),
    ("k-", {}, True),
    ("k-", {"k": False}, True),
    ("k-", {"k": ""}, True),
    ("k-", {"k": []}, True),
    ("k-", {"k": "x"}, False),
    ("k.", {"k": 0}, True),
    ("k.", {"k": None}, False),
    ("k.", {}, False),
    ("k!.", {}, True),
    ("k!.", {"k": None}, True),
    ("k!.", {"k": False}, False),
    ("^z", {}, True),
    ("^a", {}, False),
    ("k==1", {"k": 1.0}, True),
    ("k<>1", {"k": 1}, False),
    ("k<>1", {}, True),
    ("k===3.10", {"k": "3.10"}, True),
    ("k===3.10", {"k": 3.1}, False),
    ("k=3.10", {"k": 3.1}, True),
    ("k===1", {"k": 1}, False),
    ("k===true", {"k": "true"}, True),
    ("k!==1", {"k": 1}, True),
    ("k!==1", {"k": "1"}, False),
    ("k!==1", {}, True),
    ("k:v", {"k": ["u", "v"]}, True),
    ("k:v", {"k": ("v",)}, True),
    ("k:v", {"k": ["u"]}, False),
    ("k:v", {"k": "v"}, False),
    ("k:v", {"k": None}, False),
    ("k:v", {}, False),
    ("k:1", {"k": [1.0]}, True),
    ("k:1", {"k": [True]}, False),
    ("k:'1'", {"k": [1]}, False),
    ("k!:v", {"k": ["u"]}, True),
    ("k!:v", {"k": []}, True),
    ("k!:v", {"k": ["v", "u"]}, False),
    ("k!:v", {"k": "u"}, False),
    ("k!:v", {}, False),
    ("k?=1", {"k": 1}, True),
    ("k?=1", {"k": 2}, False),
    ("k?=1", {}, False),
    ("k?=null", {"k": None}, True),
]


@pytest.mark.parametrize(("text", "params", "expected"), SEMANTICS + AXS_SEMANTICS)
def test_query_test(text: str, params: dict[str, Value], expected: bool) -> None:
    """Test conditions against tags {a, b} and resolved parameters."""
    assert parse(text).test({"a", "b"}, params) is expected


def test_sweep_cannot_be_tested() -> None:
    """Refuse to test a sweep until it is expanded."""
    with pytest.raises(ValueError, match="expand"):
        parse("k:=1:2").test(set(), {"k": 1})
    with pytest.raises(ValueError, match="expand"):
        Condition("k", "sweep", (1,)).test(set(), {})


def test_condition_rejects_unknown_operator() -> None:
    """Refuse a Condition with an operator the language does not have."""
    with pytest.raises(ValueError, match="=="):
        Condition("k", "==", 1)


def test_equality_is_type_strict() -> None:
    """Treat `k=1`, `k=1.0` and `k=true` as different queries, with matching hashes."""
    assert parse("k=1") != parse("k=true") and parse("k=1") != parse("k=1.0")
    assert parse("k=1") == parse("k = 1")
    assert len({parse("k=1"), parse("k=1 "), parse("k=true")}) == 2


# ---------------------------------------------------------------------------- expand()


def test_expand_non_sweep_is_itself() -> None:
    """Expand a query without sweeps to just itself."""
    query = parse("a,k=1")
    assert query.expand() == [query]


def test_expand_product_order() -> None:
    """Expand two sweeps into their product, the first swept key varying slowest."""
    points = [str(q) for q in parse("a,x:=1:2,k=0,y:=p:q:r").expand()]
    assert points == [
        "a,x=1,k=0,y=p", "a,x=1,k=0,y=q", "a,x=1,k=0,y=r",
        "a,x=2,k=0,y=p", "a,x=2,k=0,y=q", "a,x=2,k=0,y=r",
    ]
    assert not any(q.is_sweep for q in parse("x:=1:2").expand())


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("k:=100..1600*2", [100, 200, 400, 800, 1600]),
        ("k:=100..1000*2", [100, 200, 400, 800]),
        ("k:=100..400+100", [100, 200, 300, 400]),
        ("k:=100..450+100", [100, 200, 300, 400]),
        ("k:=1..4", [1, 2, 3, 4]),
        ("k:=3..3", [3]),
        ("k:=-2..0", [-2, -1, 0]),
        ("k:=1..2+0.5", [1.0, 1.5, 2.0]),
        ("k:=a:1..2:'b'", ["a", 1, 2, "b"]),
    ],
)
def test_expand_values(text: str, values: list[Value]) -> None:
    """Expand lists and ranges (end included when hit, never exceeded) to `=` points."""
    expanded = parse(text).expand()
    assert [q.assignments["k"] for q in expanded] == values
    assert [type(q.assignments["k"]) for q in expanded] == [type(v) for v in values]


# ---------------------------------------------------------------------------- hypothesis

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.floats(allow_nan=False), st.text(max_size=8),
)


def _conditions() -> st.SearchStrategy[Condition]:
    """Generate valid conditions of every operator."""
    keyed = st.builds(Condition, NAMES, st.sampled_from(["tag", "notag", "set", "unset", "true", "false"]))
    ops = ["=", "!=", "<", "<=", ">", ">=", ":", "!:", "?="]
    compare = st.builds(Condition, NAMES, st.sampled_from(ops), SCALARS)
    member = st.builds(
        Condition, NAMES, st.sampled_from(["in", "notin"]), st.tuples() | st.lists(SCALARS, max_size=3).map(tuple)
    )
    sweep = st.builds(Condition, NAMES, st.just("sweep"), st.lists(SCALARS, min_size=1, max_size=3).map(tuple))
    return st.one_of(keyed, compare, member, sweep)


@settings(max_examples=300)
@given(st.lists(_conditions(), max_size=5).map(tuple))
def test_generated_queries_round_trip(conditions: tuple[Condition, ...]) -> None:
    """Print any valid query and parse it back to an equal query."""
    query = Query(conditions)
    assert parse(str(query)) == query


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list("ab1_-!=<>?:.,[]'\" *+^é")) | st.characters(), max_size=20))
def test_any_text_parses_or_raises_syntax_error(text: str) -> None:
    """Return a query whose canonical form re-parses equal, or raise QuerySyntaxError."""
    try:
        query = parse(text)
    except QuerySyntaxError as error:
        assert 1 <= error.column <= len(text) + 1
        return
    assert parse(str(query)) == query


def test_import_does_not_load_lark() -> None:
    """Keep lark out of a process that only formats or tests values (the cached path)."""
    code = "import sys, axq.query as q; q.format_value(1); print('lark' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert done.stdout.strip() == "False", done.stderr


# ---------------------------------------------------------------------------- axs2mlperf READMEs

AXS2MLPERF = Path(__file__).resolve().parent / "data" / "axs2mlperf_queries.txt"


def _readme_queries() -> list[str]:
    """Return the queries collected from axs2mlperf's READMEs (comments and blanks skipped)."""
    lines = AXS2MLPERF.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_readme_queries_collected() -> None:
    """Hold 69 distinct queries: 55 of today's READMEs, 14 only in the older ones."""
    queries = _readme_queries()
    assert len(queries) == len(set(queries)) == 69
    assert "shell_tool,can_python,desired_python_version===3.11" in queries
    assert any(q.endswith(",accuracy+") for q in queries)
    assert not any("$" in q for q in queries)


@pytest.mark.parametrize("text", _readme_queries())
def test_readme_query_parses(text: str) -> None:
    """Parse every axs2mlperf README query, and print it so that it parses back the same."""
    query = parse(text)
    assert query.tags and len(query.conditions) == text.count(",") + 1
    assert parse(str(query)) == query


def test_readme_axs_operators_mean_what_axs_means() -> None:
    """Give `desired_python_version===3.11` the text "3.11" and `accuracy+` the value true."""
    assert parse("shell_tool,can_python,desired_python_version===3.11").assignments == {
        "desired_python_version": "3.11"
    }
    assert parse("loadgen_output,dtype=fp16,accuracy+").assignments == {"dtype": "fp16", "accuracy": True}


@pytest.mark.parametrize(
    ("text", "rule", "reason"),
    [
        ("number,value?=1", "toy_number", None),
        ("number,value?=2", "toy_number", "`value?=2` does not hold (`value` is 1)"),
        ("number,mode?=special", "toy_special", None),
        ("number,value:1", "toy_number", "`value:1` does not hold (`value` is 1)"),
        ("number,value!.", "toy_number", "`-value?` does not hold (`value` is 1)"),
        ("number,^number", "toy_number", "has tag `number`"),
    ],
)
def test_rules_show_axs_operators(work: Path, text: str, rule: str, reason: str | None) -> None:
    """Match rules on axs's operators and say which condition fails in axq's spelling."""
    from axq.resolve import rules

    found = {m.producer.recipe.name: m for m in rules(text)}
    assert found[rule].reason == reason
    assert (reason is None) == found[rule].ok


def test_rules_take_text_values(work: Path) -> None:
    """Fill a parameter from `k===v` with the text as typed, not a number."""
    from axq.resolve import rules

    chosen = rules("number,label===3.10")[0]
    assert chosen.ok and chosen.params["label"] == "3.10"
