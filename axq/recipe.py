"""Load and check recipes: the entries in `entries/` that say what they can build.

A recipe is a directory holding `recipe.json` (its producer rules; see docs/recipes.md)
and optionally `code.py` (build functions and getters). Manifests are checked eagerly:
an unknown key or a wrong type is a `ManifestError` naming the recipe and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from axq import locations
from axq.entry import load_code
from axq.errors import ManifestError

RECIPE_FILE = locations.RECIPE_FILE
CODE_FILE = "code.py"

# field -> (python type, human name); "producers" entries are checked by PRODUCER_FIELDS.
RECIPE_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "version": (int, "an integer"),
    "description": (str, "a string"),
    "defaults": (dict, "an object"),
    "producers": (list, "a list of producer rules"),
    "getters": (list, "a list of function names"),
    "name_params": (list, "a list of parameter names"),
    "packages": (list, "a list of Python distribution names"),
}
PRODUCER_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "tags": (list, "a list of tags"),
    "params": (dict, "an object"),
    "defaults": (dict, "an object"),
    "required": (list, "a list of parameter names"),
    "deps": (dict, "an object mapping names to queries"),
    "build": (str, "a function name"),
}


@dataclass(frozen=True)
class Producer:
    """One producer rule: what a recipe builds, from which parameters and dependencies."""

    recipe: Recipe
    index: int
    tags: tuple[str, ...]
    params: dict[str, Any]
    defaults: dict[str, Any]
    required: tuple[str, ...]
    deps: dict[str, str]
    build: str

    @property
    def label(self) -> str:
        """Name the rule for messages: `recipe[index](tags)`."""
        return f"{self.recipe.name}[{self.index}]({','.join(self.tags)})"

    @property
    def accepted(self) -> set[str]:
        """Return every parameter name this rule knows."""
        return set(self.params) | set(self.defaults) | set(self.required)


@dataclass(frozen=True)
class Recipe:
    """A recipe entry: its directory, version, rules and getters."""

    name: str
    path: Path
    version: int
    description: str
    producers: tuple[Producer, ...] = field(default=(), compare=False, repr=False)
    getters: tuple[str, ...] = ()
    name_params: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    def code(self) -> ModuleType:
        """Import this recipe's code.py (once per process)."""
        return load_code(str(self.path / CODE_FILE))

    def function(self, name: str) -> Any:
        """Return a function from code.py, or raise ManifestError if it is missing."""
        fn = getattr(self.code(), name, None)
        if not callable(fn):
            raise ManifestError(self.name, name, f"no function `{name}` in {self.path / CODE_FILE}")
        return fn


def _check_fields(name: str, data: Any, fields: dict, where: str) -> None:
    """Raise ManifestError for a non-object, an unknown key or a wrongly typed value."""
    if not isinstance(data, dict):
        raise ManifestError(name, where, f"expected an object, found {type(data).__name__}")
    for key, value in data.items():
        if key not in fields:
            raise ManifestError(name, f"{where}.{key}".lstrip("."), f"unknown key; expected one of {', '.join(fields)}")
        typ, human = fields[key]
        if not isinstance(value, typ) or isinstance(value, bool):
            raise ManifestError(name, f"{where}.{key}".lstrip("."), f"expected {human}, found {json.dumps(value)[:60]}")


def _check_strings(name: str, where: str, items: Any) -> None:
    """Raise ManifestError unless items are all strings."""
    for item in items:
        if not isinstance(item, str):
            raise ManifestError(name, where, f"expected strings, found {json.dumps(item)}")


SCALARS = (type(None), bool, int, float, str)


def _check_values(name: str, where: str, values: dict) -> None:
    """Raise ManifestError for a parameter value a query cannot write: only scalars and lists."""
    for key, value in values.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, SCALARS) for item in items):
            raise ManifestError(name, f"{where}.{key}", f"expected a number, string, bool, null or a list of "
                                f"those (a query must be able to state it), found {json.dumps(value)[:60]}")


def _producer(recipe: Recipe, index: int, data: Any, shared: dict) -> Producer:
    """Check one producer rule and build it."""
    where = f"producers[{index}]"
    _check_fields(recipe.name, data, PRODUCER_FIELDS, where)
    if not data.get("tags"):
        raise ManifestError(recipe.name, f"{where}.tags", "expected at least one tag")
    for key in ("tags", "required"):
        _check_strings(recipe.name, f"{where}.{key}", data.get(key, []))
    _check_strings(recipe.name, f"{where}.deps", data.get("deps", {}).values())
    for key in ("params", "defaults"):
        _check_values(recipe.name, f"{where}.{key}", data.get(key, {}))
    return Producer(
        recipe=recipe,
        index=index,
        tags=tuple(data["tags"]),
        params=dict(data.get("params", {})),
        defaults={**shared, **data.get("defaults", {})},
        required=tuple(data.get("required", [])),
        deps=dict(data.get("deps", {})),
        build=data.get("build", "build"),
    )


def read_recipe(path: Path) -> Recipe:
    """Load and check the recipe in directory `path`."""
    name = path.name
    try:
        data = json.loads((path / RECIPE_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ManifestError(name, RECIPE_FILE, f"not valid JSON: {error}") from None
    _check_fields(name, data, RECIPE_FIELDS, "")
    _check_values(name, "defaults", data.get("defaults", {}))
    if "version" not in data or not data.get("producers"):
        raise ManifestError(name, "version" if "version" not in data else "producers", "required")
    for key in ("getters", "name_params", "packages"):
        _check_strings(name, key, data.get(key, []))
    recipe = Recipe(name, path, data["version"], data.get("description", ""),
                    getters=tuple(data.get("getters", [])),
                    name_params=tuple(data.get("name_params", [])),
                    packages=tuple(data.get("packages", [])))
    producers = tuple(_producer(recipe, i, p, data.get("defaults", {})) for i, p in enumerate(data["producers"]))
    object.__setattr__(recipe, "producers", producers)
    return recipe


def recipe_dirs() -> list[Path]:
    """List every recipe directory on the search path, in search order."""
    found: list[Path] = []
    for root in map(Path, locations.search_path()):
        if root.is_dir():
            found += sorted(d for d in root.iterdir() if (d / RECIPE_FILE).is_file())
    return found


@cache
def all_recipes() -> tuple[Recipe, ...]:
    """Load every recipe on the search path (once per process)."""
    return tuple(read_recipe(d) for d in recipe_dirs())
