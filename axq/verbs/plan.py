"""Say what a query means before anything runs: `plan`, `params`, `rules`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from axq.answer import emit
from axq.verbs.command import Call

if TYPE_CHECKING:
    from axq.api import ParamInfo


def plan(call: Call) -> int:
    """Print the dependency graph: cached, or to build and why, with expected durations."""
    import axq.api as api

    steps = api.plan(call.query, call.parsed_overrides(), work_collection=call.work_collection)
    if call.json:
        emit([{"name": s.node.name, "recipe": s.node.producer.recipe.name, "cached": s.cached,
               "reason": s.reason, "depth": s.depth, "estimate_s": s.estimate_s, "stale": s.stale}
              for s in steps], True)
        return 0
    print(steps)
    return 0


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
    """Print which producer rules match a query and why the others don't, each named as errors name it."""
    import axq.api as api
    from axq.resolve import describe

    matches = api.rules(call.query, work_collection=call.work_collection)
    if call.json:
        emit([{"rule": describe(m.producer), "id": m.producer.label, "matches": m.ok, "reason": m.reason,
               "specificity": m.specificity, "unasked": m.unasked, "recipe_path": str(m.producer.recipe.path)}
              for m in matches], True)
        return 0
    for i, m in enumerate(matches):
        mark = "CHOSEN" if i == 0 and m.ok else "match " if m.ok else "no    "
        print(f"{mark} {describe(m.producer)}" + (f": {m.reason}" if m.reason else
              f" (specificity {m.specificity}, {m.unasked} fixed not asked for): {m.producer.recipe.description}"
              f"\n         from {m.producer.recipe.path}"))
    return 0
