"""Hold the dependency graph of a resolved query: nodes and the edges between them.

Kept apart from matching (resolve.py) and from the build and cache policy (build.py) that
use it. A node is one entry-to-be: the producer rule, its resolved parameters and its
dependencies, which fix its identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from axq.identity import directory_name, identity

if TYPE_CHECKING:
    from axq.codeid import Code
    from axq.recipe import Producer


@dataclass(eq=False)
class Node:
    """An entry to look up or build."""

    producer: Producer
    params: dict[str, Any]
    query: str
    deps: dict[str, Node] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # parameter -> where its value came from

    def __repr__(self) -> str:
        return f"Node({self.name!r})"

    @cached_property
    def code(self) -> Code:
        """Return the code the recipe runs, as it is now (see axq.codeid)."""
        from axq.codeid import recipe_code

        return recipe_code(self.producer.recipe.path)

    @cached_property
    def identity(self) -> str:
        """Digest what goes into this entry, its recipe's code included (see axq.identity)."""
        recipe = self.producer.recipe
        dep_ids = {name: dep.identity for name, dep in self.deps.items()}
        return identity(recipe.name, recipe.version, self.producer.tags, self.params, dep_ids, self.code.digest)

    @cached_property
    def name(self) -> str:
        """Return the entry directory name: readable part plus digest."""
        recipe = self.producer.recipe
        shown = [str(self.params.get(p)) for p in recipe.name_params if self.params.get(p) is not None]
        return directory_name(recipe.name, [*self.producer.tags[-1:], *shown], self.identity)

    @cached_property
    def estimate_s(self) -> float | None:
        """Return the recipe's estimate of this node's build time in seconds, if it gives one."""
        estimate = self.producer.hook("estimate")
        value = estimate(dict(self.params)) if estimate else None
        return None if value is None else float(value)

