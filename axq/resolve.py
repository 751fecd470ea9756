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
from dataclasses import dataclass
from typing import Any

from axq.errors import AmbiguousRuleError, CycleError, ManifestError, NoProducerError, UsageError, did_you_mean
from axq.graph import Node
from axq.query import Condition, Query, format_value, parse
from axq.recipe import Producer, all_recipes


@dataclass(frozen=True)
class Match:
    """How one producer rule fares against a query."""

    producer: Producer
    reason: str | None  # None when it matches
    specificity: int = 0
    params: dict[str, Any] | None = None
    unasked: int = 0  # fixed parameters the query does not name: on a tie, fewer wins

    @property
    def rank(self) -> tuple[bool, int, int]:
        """Order matches: matching first, then most specific, then least presumptuous."""
        return (not self.ok, -self.specificity, self.unasked)

    @property
    def ok(self) -> bool:
        return self.reason is None


def resolved_params(producer: Producer, query: Query) -> dict[str, Any]:
    """Fill parameters: defaults, then the query's `k=v` values, then the fixed ones."""
    return {**producer.defaults, **query.assignments, **producer.params}


def _tag_problem(producer: Producer, query: Query) -> str | None:
    """Say why the rule's tags don't fit the query, or None."""
    missing = [t for t in query.tags if t not in producer.tags]
    if missing:
        return f"lacks tag `{missing[0]}`"
    present = [t for t in query.absent_tags if t in producer.tags]
    return f"has tag `{present[0]}`" if present else None


def _param_problem(producer: Producer, query: Query, params: dict[str, Any]) -> str | None:
    """Say why the rule's parameters don't fit the query, or None."""
    for cond in query.param_conditions:
        if cond.key not in producer.accepted:
            return f"takes no parameter `{cond.key}`" + did_you_mean(cond.key, producer.accepted)
    for cond in query.param_conditions:
        if not cond.test(producer.tags, params):
            return f"`{cond}` does not hold (`{cond.key}` is {format_value(params.get(cond.key))})"
    missing = [r for r in producer.required if params.get(r) is None]
    return f"needs `{missing[0]}=...`" if missing else None


def match(producer: Producer, query: Query) -> Match:
    """Match one producer rule against a query, saying why not when it fails."""
    params = resolved_params(producer, query)
    reason = _tag_problem(producer, query) or _param_problem(producer, query, params)
    if reason:
        return Match(producer, reason)
    named = {c.key for c in query.param_conditions}
    fixed = len(named & set(producer.params))
    return Match(producer, None, len(query.tags) + fixed, params, len(set(producer.params) - named))


def rules(query: Query | str) -> list[Match]:
    """Match every producer rule against a query (matches first, most specific first)."""
    query = parse(query) if isinstance(query, str) else query
    matches = [match(p, query) for r in all_recipes() for p in r.producers]
    return sorted(matches, key=lambda m: m.rank)


def _known_tags() -> set[str]:
    return {t for r in all_recipes() for p in r.producers for t in p.tags}


def _no_producer(query: Query, matches: list[Match]) -> NoProducerError:
    """Explain why nothing matches: an unknown tag, or the closest rules' reasons."""
    known = _known_tags()
    for tag in query.tags:
        if tag not in known:
            return NoProducerError(f"no recipe produces tag `{tag}`" + did_you_mean(tag, known))
    near = sorted(matches, key=lambda m: -sum(t in m.producer.tags for t in query.tags))
    reasons = "; ".join(f"{m.producer.label} {m.reason}" for m in near[:3])
    return NoProducerError(f"no producer rule matches `{query}`: {reasons}")


def choose(query: Query) -> Match:
    """Return the single most specific matching rule, or raise saying why there is none."""
    if query.is_sweep:
        raise UsageError(f"`{query}` sweeps a parameter: run it with `axq sweep`")
    matches = rules(query)
    winners = [m for m in matches if m.ok and m.rank == matches[0].rank]
    if not matches or not matches[0].ok:
        raise _no_producer(query, matches)
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


def resolve(query: Query | str, overrides: dict[str, Any] | None = None, _stack: tuple[str, ...] = ()) -> Node:
    """Resolve a query (and, recursively, its dependencies) into a graph of nodes."""
    query = parse(query) if isinstance(query, str) else query
    query = with_overrides(query, overrides) if overrides else query
    chosen = choose(query)
    label = chosen.producer.label
    if label in _stack:
        raise CycleError([*_stack[_stack.index(label):], label])
    assert chosen.params is not None
    node = Node(chosen.producer, chosen.params, str(query))
    for dep in chosen.producer.deps:
        node.deps[dep] = resolve(dep_query(chosen.producer, dep, chosen.params), None, (*_stack, label))
    return node
