"""Turn a query into a graph of entries: match producer rules, fill defaults, recurse.

A query matches a producer rule when its tags are a subset of the rule's tags, none of its
absent tags is among them, every parameter it names is one the rule takes, and the
resolved parameters satisfy every condition with every required parameter set. The most
specific match wins (most query tags and fixed parameters it names); among equals, the
rule with fewest fixed parameters the query does not name (the least special one); a tie
after that is an error naming the rules. See docs/recipes.md.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from axq.errors import (
    AmbiguousRuleError,
    CycleError,
    ManifestError,
    NoProducerError,
    ParameterError,
    UsageError,
    did_you_mean,
)
from axq.graph import Node
from axq.query import Condition, Query, format_value, parse
from axq.recipe import COMPUTED, Producer, Recipe, all_recipes
from axq.store import Store


@dataclass(frozen=True)
class Problem:
    """One way a rule misses a query: a tag, an unknown name, a refused value, a condition, a missing value."""

    kind: str  # "tag" (lacks one), "absent" (has one the query excludes), "name", "value", "condition", "required"
    key: str
    text: str


@dataclass(frozen=True)
class Match:
    """How one producer rule fares against a query."""

    producer: Producer
    reason: str | None  # None when it matches; else the first of problems
    specificity: int = 0
    params: dict[str, Any] | None = None
    unasked: int = 0  # fixed parameters the query does not name: on a tie, fewer wins
    value_error: ParameterError | None = None  # the rule would fit, but a value is refused
    sources: dict[str, str] | None = None  # parameter -> "default", "rule", "collection", "query", "fixed"
    problems: tuple[Problem, ...] = ()  # every way it misses the query: the fewer, the closer it is
    notes: tuple[str, ...] = ()  # the spellings it understood: `execution_device=gpu is axq's device=cuda`

    @property
    def rank(self) -> tuple[bool, int, int, int, int, int, int]:
        """Order matches: matching first, then closest (fewest missing tags, fewest problems, fewest
        contradicted conditions), then most specific, then least presumptuous."""
        def count(kind: str) -> int:
            return sum(p.kind == kind for p in self.problems)

        return (not self.ok, count("tag"), count("absent"), len(self.problems), count("condition"),
                -self.specificity, self.unasked)

    @property
    def ok(self) -> bool:
        return self.reason is None


Settings = dict[str, Any]  # collection settings: parameter defaults kept in the work collection


@dataclass(frozen=True)
class Scope:
    """What a work collection adds to resolution: its settings and its recipe collections."""

    settings: Settings = field(default_factory=dict)
    roots: tuple[str, ...] = ()  # recipe roots of collections added to it (git_repo,collection)

    @classmethod
    def of(cls, store: Store) -> Scope:
        """Return the scope of a work collection."""
        return cls(store.settings(), store.recipe_roots())

    def recipes(self) -> tuple[Recipe, ...]:
        return all_recipes(self.roots)


def layers(producer: Producer, query: Query, settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """Return the sources of parameter values, later ones winning: defaults ... fixed."""
    declared = {k: v for k, v in producer.defaults.items() if k in producer.recipe.parameters
                and producer.recipe.parameters[k].has_default and producer.recipe.parameters[k].default == v}
    own = {k: v for k, v in producer.defaults.items() if k not in declared and v is not COMPUTED}
    computed = {k: producer.recipe.computed_default(k) for k, v in producer.defaults.items() if v is COMPUTED}
    named = {producer.recipe.aliases.get(k, k): v for k, v in settings.items()}
    taken = {k: v for k, v in named.items() if k in producer.accepted and k not in producer.params}
    return [("default", declared), ("computed", computed), ("rule", own), ("collection", taken),
            ("query", query.assignments), ("fixed", producer.params)]


def resolved_params(producer: Producer, query: Query, settings: Settings | None = None) -> dict[str, Any]:
    """Fill parameters: defaults, collection settings, the query's `k=v` values, the fixed ones."""
    return {k: v for _, layer in layers(producer, query, settings or {}) for k, v in layer.items()}


def value_sources(producer: Producer, query: Query, settings: Settings | None = None) -> dict[str, str]:
    """Say where each resolved parameter's value came from."""
    return {k: source for source, layer in layers(producer, query, settings or {}) for k in layer}


_VALUED = ("=", "!=", "===", "!==")  # operators whose value a spelling maps (`in`/`notin`: each item)


def spelled_query(producer: Producer, query: Query) -> tuple[Query, tuple[str, ...]]:
    """Return the query in axq's own names and values, and a note for each spelling it used.

    A parameter's `aliases` are other names for it (`execution_device` for `device`); its
    `spellings` map other values, per name as written (`execution_device=gpu` is
    `device=cuda`, `num_gpus=1` too). See docs/recipes.md.
    """
    recipe = producer.recipe
    if not any(c.key in recipe.aliases or _has_spellings(producer, c.key) or _normalises(producer, c.key)
               for c in query.param_conditions):
        return query, ()
    conditions, notes = [], []
    for condition in query.conditions:
        found = condition if condition.op in ("tag", "notag") else _spelled(producer, condition)
        if found != condition:
            notes.append(f"{condition} is axq's {found}")
        conditions.append(_normal(producer, found))
    return Query(tuple(conditions)), tuple(dict.fromkeys(notes))


def _normalises(producer: Producer, name: str) -> bool:
    """Say whether the parameter's values are rewritten before identity (a path, a value null means)."""
    declared = producer.declared(producer.recipe.aliases.get(name, name))
    return declared is not None and (declared.type == "path" or declared.null_means is not None)


def _normal(producer: Producer, condition: Condition) -> Condition:
    """Return a `k=v` condition with v as resolution stores it (`d/` as `/abs/d`), so that it holds of the entry."""
    if condition.op not in ("=", "!=") or not _normalises(producer, condition.key):
        return condition
    declared = producer.declared(condition.key)
    assert declared is not None
    try:
        return replace(condition, value=declared.check(condition.value))
    except ParameterError:
        return condition  # resolution refuses it, with the value as written


def _has_spellings(producer: Producer, name: str) -> bool:
    declared = producer.declared(name)
    return declared is not None and bool(declared.spellings)


def _spelled(producer: Producer, condition: Condition) -> Condition:
    """Return one condition in axq's name and value."""
    from axq.parameters import spelled

    name = producer.recipe.aliases.get(condition.key, condition.key)
    declared = producer.declared(name)
    if declared is None or not declared.spellings:
        return replace(condition, key=name)
    if condition.op in ("in", "notin") and isinstance(condition.value, (list, tuple)):
        value: Any = type(condition.value)(spelled(declared, condition.key, v)[1] for v in condition.value)
    elif condition.op in _VALUED:
        value = spelled(declared, condition.key, condition.value)[1]
    else:
        value = condition.value
    return replace(condition, key=name, value=value)


def kernel_params(producer: Producer) -> dict[str, str]:
    """Return the rule's parameters that are axq settings (`verbosity`), each with the setting it is."""
    return {name: p.kernel for name, p in producer.recipe.parameters.items() if p.kernel and name in producer.accepted}


def kernel_settings(query: Query | str, scope: Scope | None = None) -> dict[str, Any]:
    """Return the axq settings a query sets through parameters its recipes declare as such (`verbosity=2`).

    Read before the query runs (the screen's verbosity), so only plain `k=v` values count;
    a bad value is left to resolution to refuse.
    """
    query = parse(query) if isinstance(query, str) else query
    declared = {name: p for r in (scope or Scope()).recipes() for name, p in r.parameters.items() if p.kernel}
    found: dict[str, Any] = {}
    for condition in query.param_conditions:
        parameter = declared.get(condition.key)
        if parameter is not None and parameter.kernel and condition.op == "=":
            try:
                found[parameter.kernel] = parameter.check(condition.value)
            except ParameterError:
                continue
    return found


def kernel_notes(producer: Producer, query: Query) -> tuple[str, ...]:
    """Say what each axq setting the query sets means (`verbosity=2 is axq's --verbose`)."""
    kernel = kernel_params(producer)
    return tuple(f"{c} is axq's {_setting_words(kernel[c.key], c.value)}" for c in query.param_conditions
                 if c.key in kernel and c.op == "=")


def _setting_words(setting: str, value: Any) -> str:
    """Name what a kernel setting's value does in axq's own words."""
    assert setting == "verbosity"
    if not isinstance(value, int) or isinstance(value, bool):
        return "verbosity"
    return "--quiet" if value <= 0 else "--verbose" if value >= 2 else "default verbosity (no --quiet, no --verbose)"


def checked_params(producer: Producer, params: dict[str, Any]) -> dict[str, Any]:
    """Return params normalised by their declarations; raise ParameterError for a refused value."""
    checked, refused = _refusals(producer, params)
    if refused:
        raise refused[0]
    return checked


def _refusals(producer: Producer, params: dict[str, Any]) -> tuple[dict[str, Any], list[ParameterError]]:
    """Return params normalised by their declarations, and the errors of the values they refuse."""
    checked, refused = dict(params), []
    for key, value in params.items():
        declared = producer.declared(key)
        if declared is not None and not (value is None and key in producer.required):
            try:
                checked[key] = declared.check(value)
            except ParameterError as error:
                refused.append(error)
    return checked, refused


def describe(producer: Producer) -> str:
    """Name a rule in the user's words: its recipe and tags, and what sets it apart from its siblings.

    `loadgen_program (loadgen_output,classified_imagenet, framework=pytorch)`: never the
    internal `loadgen_program[2]`.
    """
    siblings = [p for p in producer.recipe.producers if p.tags == producer.tags and p is not producer]
    own = [f"{k}={format_value(v)}" for k, v in producer.params.items()
           if any(k not in s.params or s.params[k] != v for s in siblings)]
    return f"{producer.recipe.name} ({', '.join([','.join(producer.tags), *own])})"


def _tag_problems(producer: Producer, query: Query) -> list[Problem]:
    """Say which of the query's tags the rule lacks, and which absent tags it has."""
    return ([Problem("tag", t, f"lacks tag `{t}`") for t in query.tags if t not in producer.tags]
            + [Problem("absent", t, f"has tag `{t}`") for t in query.absent_tags if t in producer.tags])


def _name_problems(producer: Producer, query: Query) -> list[Problem]:
    """Say which parameters the query names that the rule does not take."""
    unknown = dict.fromkeys(c.key for c in query.param_conditions if c.key not in producer.accepted)
    return [Problem("name", k, f"takes no parameter `{k}`" + did_you_mean(k, producer.accepted)) for k in unknown]


def _specificity(producer: Producer, query: Query) -> int:
    """Count the query's tags and the fixed parameters it names."""
    return len(query.tags) + len({c.key for c in query.param_conditions} & set(producer.params))


def _param_problems(producer: Producer, query: Query, params: dict[str, Any], skip: set[str]) -> list[Problem]:
    """Say which of the query's conditions the rule's values break, and which required values are missing."""
    broken = [Problem("condition", c.key, f"`{c}` does not hold (`{c.key}` is {format_value(params.get(c.key))})")
              for c in query.param_conditions if c.key not in skip and not c.test(producer.tags, params)]
    missing = [Problem("required", r, f"needs `{r}=...`") for r in producer.required
               if r not in skip and params.get(r) is None]
    return broken + missing


def match(producer: Producer, query: Query, settings: Settings | None = None) -> Match:
    """Match one producer rule against a query; when it fails, say every way it misses."""
    query, notes = spelled_query(producer, query)
    params, refused = _refusals(producer, resolved_params(producer, query, settings))
    names = _name_problems(producer, query)
    values = [Problem("value", e.name, str(e)) for e in refused]
    skip = {p.key for p in [*names, *values]}
    problems = [*_tag_problems(producer, query), *names, *values, *_param_problems(producer, query, params, skip)]
    named = {c.key for c in query.param_conditions}
    specificity, unasked = _specificity(producer, query), len(set(producer.params) - named)
    if problems:
        for error in refused:
            error.rule = describe(producer)
        return Match(producer, problems[0].text, specificity, params, unasked, refused[0] if refused else None,
                     problems=tuple(problems))
    sources = value_sources(producer, query, settings)
    for name in kernel_params(producer):  # axq's own settings: no parameter of the build, no part of identity
        params.pop(name, None)
        sources.pop(name, None)
    return Match(producer, None, specificity, params, unasked, sources=sources,
                 notes=(*notes, *kernel_notes(producer, query)))


def rules(query: Query | str, scope: Scope | None = None) -> list[Match]:
    """Match every producer rule against a query (matches first, most specific first)."""
    query = parse(query) if isinstance(query, str) else query
    scope = scope or Scope()
    matches = [match(p, query, scope.settings) for r in scope.recipes() for p in r.producers]
    return sorted(matches, key=lambda m: m.rank)


def _known_tags(scope: Scope) -> set[str]:
    return {t for r in scope.recipes() for p in r.producers for t in p.tags}


def _no_producer(query: Query, matches: list[Match], scope: Scope) -> NoProducerError:
    """Explain why nothing matches: an unknown tag or parameter, else what the closest rule needs."""
    known = _known_tags(scope)
    for tag in query.tags:
        if tag not in known:
            return NoProducerError(f"no recipe produces tag `{tag}`" + did_you_mean(tag, known))
    unknown = _unknown_names(query, matches)
    if unknown or not matches:
        return NoProducerError(unknown or f"no recipe produces `{query}`")
    best = matches[0]
    text = f"nothing matches `{query}`: the closest, {describe(best.producer)}, {_problems_text(best.problems)}"
    others = [m for m in matches[1:4] if m.rank[:4] == best.rank[:4] and m.problems != best.problems
              and all(p.kind in ("required", "value") for p in m.problems)]  # takes all the query says
    return NoProducerError(text + "".join(f"; or {describe(m.producer)}, {_problems_text(m.problems)}"
                                          for m in others[:1]))


def _unknown_names(query: Query, matches: list[Match]) -> str:
    """Say which parameters no rule with the query's tags takes (with a near miss), or ""."""
    fitting = [m.producer for m in matches if not any(p.kind in ("tag", "absent") for p in m.problems)]
    if not fitting:
        return ""
    accepted = {name for p in fitting for name in (*p.accepted, *p.recipe.aliases)}
    unknown = {c.key: c for c in query.param_conditions if c.key not in accepted}
    tags = ",".join(query.tags)
    return "; ".join(f"unknown parameter `{k}`" + (_taken_by(c, tags, matches) or did_you_mean(k, accepted))
                     for k, c in unknown.items())


def _taken_by(condition: Condition, tags: str, matches: list[Match]) -> str:
    """Say which other rule takes the parameter (first one that fixes the value asked for), or ""."""
    takers = [m.producer for m in matches if condition.key in m.producer.accepted]
    fixing = [p for p in takers if condition.key in p.params and condition.test((), p.params)]
    return f" for `{tags}`: {describe((fixing or takers)[0])} takes it" if takers else ""


def _problems_text(problems: tuple[Problem, ...]) -> str:
    """Say a rule's problems as one clause: `needs `imagenet_dir=...``, ..."""
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return ", and ".join(p.text for p in problems[:3]) + more


def choose(query: Query, scope: Scope | None = None) -> Match:
    """Return the single most specific matching rule, or raise saying why there is none."""
    if query.is_sweep:
        raise UsageError(f"`{query}` sweeps a parameter: run it with `axq sweep`")
    scope = scope or Scope()
    matches = rules(query, scope)
    winners = [m for m in matches if m.ok and m.rank == matches[0].rank]
    if not matches or not matches[0].ok:
        closest = matches[0] if matches else None
        if closest and closest.value_error and all(p.kind == "value" for p in closest.problems):
            raise closest.value_error
        raise _no_producer(query, matches, scope)
    if len(winners) > 1:
        named = ", ".join(describe(m.producer) for m in winners)
        raise AmbiguousRuleError(f"`{query}` matches several rules equally well: {named}; "
                                 "add a tag or parameter to choose")
    note(matches[0].notes)
    return matches[0]


_NOTED: set[str] = set()  # notes already printed by this process: a sweep says each once


def note(notes: tuple[str, ...]) -> None:
    """Print each note on stderr, once a process: `axq: execution_device=gpu is axq's device=cuda`."""
    for text in notes:
        if text not in _NOTED:
            _NOTED.add(text)
            print(f"axq: {text}", file=sys.stderr)


def forget_notes() -> None:
    """Forget the notes printed (for tests that run several commands in one process)."""
    _NOTED.clear()


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def dep_query(producer: Producer, dep: str, params: dict[str, Any]) -> str:
    """Fill a dependency query's `{param}` placeholders with canonical values."""
    def fill(found: re.Match) -> str:
        key = found.group(1)
        if key not in params:
            raise ManifestError(producer.recipe.name, f"deps.{dep}", f"`{{{key}}}` is no parameter of {producer.label}")
        return format_value(params[key])

    return _PLACEHOLDER.sub(fill, producer.deps[dep])


def with_overrides(query: Query, overrides: dict[str, Any]) -> Query:
    """Return the query with `k=v` conditions replacing any conditions on those keys."""
    kept = tuple(c for c in query.conditions if c.key not in overrides or c.op in ("tag", "notag"))
    return Query(kept + tuple(Condition(k, "=", v) for k, v in overrides.items()))


MAX_DEPTH = 40  # deeper than any real graph: a recipe whose planned deps never end


def resolve(query: Query | str, overrides: dict[str, Any] | None = None, scope: Scope | None = None,
            _stack: tuple[str, ...] = ()) -> Node:
    """Resolve a query (and, recursively, its dependencies) into a graph of nodes.

    A work collection's scope adds its settings (`axq set` values fill any parameter a
    rule takes, below the query's own) and the recipes of collections added to it.
    """
    query = parse(query) if isinstance(query, str) else query
    query = with_overrides(query, overrides) if overrides else query
    chosen = choose(query, scope)
    producer, params = chosen.producer, chosen.params
    assert params is not None
    check_rule(producer, params)
    key = _cycle_key(producer, params)
    if key in _stack or len(_stack) > MAX_DEPTH:
        found = [*_stack[_stack.index(key):], key] if key in _stack else [*_stack[-4:], key]
        raise CycleError([k.split(" ", 1)[0] for k in found])
    node = Node(producer, params, str(query), sources=chosen.sources or {})
    for name, (dep, dep_overrides) in dependency_queries(producer, params).items():
        node.deps[name] = resolve(dep, dep_overrides, scope, (*_stack, key))
    check_deps(producer, params, node.deps)
    return node


def _cycle_key(producer: Producer, params: dict[str, Any]) -> str:
    """Name a rule with its parameters: the same rule with other values is no cycle."""
    from axq.identity import canonical_json

    return f"{producer.label} {canonical_json(params)}"


def check_rule(producer: Producer, params: dict[str, Any]) -> None:
    """Run the recipe's own cross-parameter check, if it has one."""
    _run_check(producer, "check", dict(params))


def check_deps(producer: Producer, params: dict[str, Any], deps: dict[str, Node]) -> None:
    """Run the recipe's check of its resolved dependencies' parameters, if it has one: before anything is built."""
    _run_check(producer, "check_deps", dict(params), {name: dict(node.params) for name, node in deps.items()})


def _run_check(producer: Producer, hook: str, *args: dict[str, Any]) -> None:
    """Call a check hook of the rule; a ParameterError it raises names the rule."""
    check = producer.hook(hook)
    if check is None:
        return
    try:
        check(*args)
    except ParameterError as error:
        error.rule = error.rule or describe(producer)
        raise


def dependency_queries(producer: Producer, params: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Return every dependency of a rule as (query, overrides): declared, then planned from params."""
    found: dict[str, tuple[str, dict[str, Any] | None]] = {
        dep: (dep_query(producer, dep, params), None) for dep in producer.deps}
    planner = producer.hook("planned_deps")
    for name, planned in (planner(dict(params)) if planner else {}).items():
        if name in found:
            raise ManifestError(producer.recipe.name, "planned_deps", f"dependency `{name}` is also declared in deps")
        query, overrides = planned if isinstance(planned, tuple) else (planned, None)
        found[name] = (query, overrides)
    return found
