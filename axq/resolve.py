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
class Match:
    """How one producer rule fares against a query."""

    producer: Producer
    reason: str | None  # None when it matches
    specificity: int = 0
    params: dict[str, Any] | None = None
    unasked: int = 0  # fixed parameters the query does not name: on a tie, fewer wins
    value_error: ParameterError | None = None  # the rule fits, but a value is refused
    sources: dict[str, str] | None = None  # parameter -> "default", "rule", "collection", "query", "fixed"

    @property
    def rank(self) -> tuple[bool, int, int]:
        """Order matches: matching first, then most specific, then least presumptuous."""
        return (not self.ok, -self.specificity, self.unasked)

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


def canonical_names(producer: Producer, query: Query) -> Query:
    """Return the query with parameter aliases (`execution_device`) replaced by their names (`device`)."""
    aliases = producer.recipe.aliases
    if not aliases or not any(c.key in aliases for c in query.param_conditions):
        return query
    return Query(tuple(replace(c, key=aliases[c.key]) if c.op not in ("tag", "notag") and c.key in aliases
                       else c for c in query.conditions))


def checked_params(producer: Producer, params: dict[str, Any]) -> dict[str, Any]:
    """Return params normalised by their declarations; raise ParameterError for a refused value."""
    checked = dict(params)
    for key, value in params.items():
        declared = producer.declared(key)
        if declared is not None and not (value is None and key in producer.required):
            try:
                checked[key] = declared.check(value)
            except ParameterError as error:
                error.rule = producer.label
                raise
    return checked


def _tag_problem(producer: Producer, query: Query) -> str | None:
    """Say why the rule's tags don't fit the query, or None."""
    missing = [t for t in query.tags if t not in producer.tags]
    if missing:
        return f"lacks tag `{missing[0]}`"
    present = [t for t in query.absent_tags if t in producer.tags]
    return f"has tag `{present[0]}`" if present else None


def _name_problem(producer: Producer, query: Query) -> str | None:
    """Say which parameter the query names that the rule does not take, or None."""
    for cond in query.param_conditions:
        if cond.key not in producer.accepted:
            return f"takes no parameter `{cond.key}`" + did_you_mean(cond.key, producer.accepted)
    return None


def _specificity(producer: Producer, query: Query) -> int:
    """Count the query's tags and the fixed parameters it names."""
    return len(query.tags) + len({c.key for c in query.param_conditions} & set(producer.params))


def _param_problem(producer: Producer, query: Query, params: dict[str, Any]) -> str | None:
    """Say why the rule's parameters don't fit the query, or None."""
    for cond in query.param_conditions:
        if not cond.test(producer.tags, params):
            return f"`{cond}` does not hold (`{cond.key}` is {format_value(params.get(cond.key))})"
    missing = [r for r in producer.required if params.get(r) is None]
    return f"needs `{missing[0]}=...`" if missing else None


def match(producer: Producer, query: Query, settings: Settings | None = None) -> Match:
    """Match one producer rule against a query, saying why not when it fails."""
    query = canonical_names(producer, query)
    params = resolved_params(producer, query, settings)
    reason = _tag_problem(producer, query) or _name_problem(producer, query)
    if reason:
        return Match(producer, reason)
    try:
        params = checked_params(producer, params)
    except ParameterError as error:
        unasked = len(set(producer.params) - {c.key for c in query.param_conditions})
        return Match(producer, str(error), _specificity(producer, query), params, unasked, error)
    reason = _param_problem(producer, query, params)
    if reason:
        return Match(producer, reason)
    named = {c.key for c in query.param_conditions}
    return Match(producer, None, _specificity(producer, query), params, len(set(producer.params) - named),
                 sources=value_sources(producer, query, settings))


def rules(query: Query | str, scope: Scope | None = None) -> list[Match]:
    """Match every producer rule against a query (matches first, most specific first)."""
    query = parse(query) if isinstance(query, str) else query
    scope = scope or Scope()
    matches = [match(p, query, scope.settings) for r in scope.recipes() for p in r.producers]
    return sorted(matches, key=lambda m: m.rank)


def _known_tags(scope: Scope) -> set[str]:
    return {t for r in scope.recipes() for p in r.producers for t in p.tags}


def _no_producer(query: Query, matches: list[Match], scope: Scope) -> NoProducerError:
    """Explain why nothing matches: an unknown tag, or the closest rules' reasons."""
    known = _known_tags(scope)
    for tag in query.tags:
        if tag not in known:
            return NoProducerError(f"no recipe produces tag `{tag}`" + did_you_mean(tag, known))
    near = sorted(matches, key=lambda m: -sum(t in m.producer.tags for t in query.tags))
    reasons = "; ".join(f"{m.producer.label} {m.reason}" for m in near[:3])
    return NoProducerError(f"no producer rule matches `{query}`: {reasons}")


def choose(query: Query, scope: Scope | None = None) -> Match:
    """Return the single most specific matching rule, or raise saying why there is none."""
    if query.is_sweep:
        raise UsageError(f"`{query}` sweeps a parameter: run it with `axq sweep`")
    scope = scope or Scope()
    matches = rules(query, scope)
    winners = [m for m in matches if m.ok and m.rank == matches[0].rank]
    if not matches or not matches[0].ok:
        refused = sorted((m for m in matches if m.value_error), key=lambda m: (-m.specificity, m.unasked))
        if refused:
            raise refused[0].value_error  # type: ignore[misc]
        raise _no_producer(query, matches, scope)
    if len(winners) > 1:
        labels = ", ".join(m.producer.label for m in winners)
        raise AmbiguousRuleError(f"`{query}` matches several rules equally well: {labels}; "
                                 "add a tag or parameter to choose")
    return matches[0]


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
    return node


def _cycle_key(producer: Producer, params: dict[str, Any]) -> str:
    """Name a rule with its parameters: the same rule with other values is no cycle."""
    from axq.identity import canonical_json

    return f"{producer.label} {canonical_json(params)}"


def check_rule(producer: Producer, params: dict[str, Any]) -> None:
    """Run the recipe's own cross-parameter check, if it has one."""
    check = producer.hook("check")
    if check is None:
        return
    try:
        check(dict(params))
    except ParameterError as error:
        error.rule = error.rule or producer.label
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
