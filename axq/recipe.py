"""Load and check recipes: the entries in `entries/` that say what they can build.

A recipe is a directory holding `recipe.json` (its producer rules; see docs/recipes.md)
and optionally `code.py` (build functions and getters). Manifests are checked eagerly:
an unknown key or a wrong type is a `ManifestError` naming the recipe and the field.

A recipe that wraps another takes that one's parameter declarations with `inherits`
(`[{"recipe": NAME, "only" | "except": [...], "overrides": {param: {field: value}}}]`)
instead of copying them: each parameter is declared in one recipe.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from axq import locations
from axq.entry import load_code
from axq.errors import ManifestError, ParameterError, did_you_mean
from axq.parameters import SPEC_FIELDS, Parameter, alias_map, read_parameters

RECIPE_FILE = locations.RECIPE_FILE
CODE_FILE = "code.py"

# field -> (python type, human name); "producers" entries are checked by PRODUCER_FIELDS.
RECIPE_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "version": (int, "an integer"),
    "description": (str, "a string"),
    "parameters": (dict, "an object declaring each parameter"),
    "inherits": (list, "a list of {recipe, only or except, overrides} objects"),
    "producers": (list, "a list of producer rules"),
    "getters": (list, "a list of function names"),
    "name_params": (list, "a list of parameter names"),
    "packages": (list, "a list of Python distribution names"),
    "planned_deps": (str, "a function name"),
    "check": (str, "a function name"),
    "check_deps": (str, "a function name"),
    "estimate": (str, "a function name"),
    "explore": (str, "a function name"),
    "resources": (str, "a function name"),
    "units": (dict, "an object mapping getters to units"),
    "bounds": (dict, "an object mapping getters to the getters of their bounds"),
}
COMPUTED: Any = type("Computed", (), {"__repr__": lambda self: "<computed default>"})()  # see default_from
_COMPUTED: dict[str, Any] = {}

INHERIT_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "recipe": (str, "the name of the recipe whose parameters it takes"),
    "only": (list, "a list of parameter names"),
    "except": (list, "a list of parameter names"),
    "overrides": (dict, "an object mapping parameter names to fields that differ here"),
}
Finder = Callable[[str], Path | None]  # a recipe's name -> its directory

# Functions of code.py a recipe (or one of its rules) may name, called while a query is resolved.
HOOKS = ("planned_deps", "check", "check_deps", "estimate", "explore", "resources")
PRODUCER_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "tags": (list, "a list of tags"),
    "params": (dict, "an object"),
    "defaults": (dict, "an object"),
    "required": (list, "a list of parameter names"),
    "deps": (dict, "an object mapping names to queries"),
    "build": (str, "a function name"),
    "planned_deps": (str, "a function name"),
    "check": (str, "a function name"),
    "check_deps": (str, "a function name"),
    "estimate": (str, "a function name"),
    "explore": (str, "a function name"),
    "resources": (str, "a function name"),
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
    hooks: dict[str, str] = field(default_factory=dict)  # planned_deps, check, estimate -> function

    @property
    def label(self) -> str:
        """Name the rule for messages: `recipe[index](tags)`."""
        return f"{self.recipe.name}[{self.index}]({','.join(self.tags)})"

    @property
    def accepted(self) -> set[str]:
        """Return every parameter name this rule knows."""
        return set(self.params) | set(self.defaults) | set(self.required)

    def declared(self, name: str) -> Parameter | None:
        """Return the declaration of parameter `name`, if the recipe has one."""
        return self.recipe.parameters.get(name)

    def hook(self, name: str) -> Any | None:
        """Return the code.py function this rule names for hook `name`, or None."""
        function = self.hooks.get(name)
        return self.recipe.function(function) if function else None


@dataclass(frozen=True)
class Recipe:
    """A recipe entry: its directory, version, rules and getters."""

    name: str
    path: Path
    version: int
    description: str
    parameters: dict[str, Parameter] = field(default_factory=dict, compare=False, repr=False)
    aliases: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    producers: tuple[Producer, ...] = field(default=(), compare=False, repr=False)
    getters: tuple[str, ...] = ()
    name_params: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    def code(self) -> ModuleType:
        """Import this recipe's code.py (once per process)."""
        return load_code(str(self.path / CODE_FILE))

    def computed_default(self, name: str) -> Any:
        """Return the default of parameter `name` that its `default_from` function computes (once a process)."""
        source = self.parameters[name].default_from
        assert source is not None
        key = source if ":" in source else f"{self.path}:{source}"  # a code.py function is this recipe's own
        if key not in _COMPUTED:
            if ":" in source:
                import importlib

                from axq.entry import use_libraries

                use_libraries()
                module, function = source.split(":", 1)
                _COMPUTED[key] = getattr(importlib.import_module(module), function)()
            else:
                _COMPUTED[key] = self.function(source)()
        return _COMPUTED[key]

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


def _producer(recipe: Recipe, index: int, data: Any, hooks: dict[str, str]) -> Producer:
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
    _check_declared(recipe, where, data)
    shared = {p.name: COMPUTED if p.default_from else p.default for p in recipe.parameters.values() if p.has_default}
    return Producer(
        recipe=recipe,
        index=index,
        tags=tuple(data["tags"]),
        params=dict(data.get("params", {})),
        defaults={**shared, **data.get("defaults", {})},
        required=tuple(data.get("required", [])),
        deps=dict(data.get("deps", {})),
        build=data.get("build", "build"),
        hooks={**hooks, **{h: data[h] for h in HOOKS if h in data}},
    )


def _check_declared(recipe: Recipe, where: str, data: dict) -> None:
    """Raise ManifestError for a rule's parameter that `parameters` does not declare or refuses."""
    named = [*data.get("defaults", {}), *data.get("required", [])]
    for name in named:
        if name not in recipe.parameters:
            raise ManifestError(recipe.name, f"{where}", f"parameter `{name}` is not declared in `parameters`")
    for key in ("defaults", "params"):
        for name, value in data.get(key, {}).items():
            if name in recipe.parameters:
                try:
                    recipe.parameters[name].check(value)
                except ParameterError as error:
                    raise ManifestError(recipe.name, f"{where}.{key}.{name}", error.problem) from None


def _manifest(path: Path) -> dict:
    """Return the checked top-level fields of the recipe.json in directory `path`."""
    name = path.name
    try:
        data = json.loads((path / RECIPE_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ManifestError(name, RECIPE_FILE, f"not valid JSON: {error}") from None
    _check_fields(name, data, RECIPE_FIELDS, "")
    return data


@dataclass
class Declarations:
    """A recipe's parameter declarations as written: inherited ones first, then its own."""

    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> declaration (overrides applied)
    owners: dict[str, str] = field(default_factory=dict)  # name -> the recipe that writes it
    places: dict[str, str] = field(default_factory=dict)  # name -> where an error about it points here


def declarations(name: str, data: dict, find: Finder, chain: tuple[str, ...] = ()) -> Declarations:
    """Return the parameter declarations of recipe `name`: those it inherits, then those it writes."""
    found = Declarations()
    for index, spec in enumerate(data.get("inherits", [])):
        _inherit(name, f"inherits[{index}]", spec, find, (*chain, name), found)
    for key, spec in data.get("parameters", {}).items():
        if key in found.specs:
            raise ManifestError(name, f"parameters.{key}", f"inherited from `{found.owners[key]}` already: "
                                f"change it in the `overrides` of `inherits`")
        found.specs[key], found.owners[key], found.places[key] = spec, name, f"parameters.{key}"
    return found


def _inherit(name: str, where: str, spec: Any, find: Finder, chain: tuple[str, ...], found: Declarations) -> None:
    """Add to `found` the declarations that one `inherits` item takes from another recipe."""
    _check_fields(name, spec, INHERIT_FIELDS, where)
    parent = spec.get("recipe")
    if parent is None:
        raise ManifestError(name, f"{where}.recipe", "required: the recipe whose parameters it takes")
    if parent in chain:
        raise ManifestError(name, f"{where}.recipe", f"inherits from itself: {' -> '.join([*chain, parent])}")
    directory = find(parent)
    if directory is None:
        raise ManifestError(name, f"{where}.recipe", f"no recipe `{parent}` on the search path")
    taken = declarations(parent, _manifest(directory), find, chain)
    names = _inherited_names(name, where, spec, taken.specs)
    overrides = spec.get("overrides", {})
    for key, changes in overrides.items():
        if key not in names:
            raise ManifestError(name, f"{where}.overrides.{key}", f"not a parameter taken from `{parent}`"
                                + did_you_mean(key, names))
        _check_override(name, f"{where}.overrides.{key}", changes)
    for key in names:
        if key in found.specs:
            raise ManifestError(name, where, f"`{key}` is inherited from `{found.owners[key]}` already")
        found.specs[key] = {**taken.specs[key], **overrides.get(key, {})}
        found.owners[key] = taken.owners[key]
        found.places[key] = f"{where}.overrides.{key}" if key in overrides else f"{where}.{key}"


def _check_override(name: str, where: str, changes: Any) -> None:
    """Raise ManifestError unless an override is an object of declaration fields."""
    if not isinstance(changes, dict):
        raise ManifestError(name, where, "expected an object of the fields that differ here")
    for key in changes:
        if key not in SPEC_FIELDS:
            raise ManifestError(name, f"{where}.{key}", f"unknown key; expected one of {', '.join(SPEC_FIELDS)}"
                                + did_you_mean(key, SPEC_FIELDS))


def _inherited_names(name: str, where: str, spec: dict, available: dict[str, Any]) -> list[str]:
    """Return the names an `inherits` item takes: `only` these, all `except` these, or all."""
    if "only" in spec and "except" in spec:
        raise ManifestError(name, where, "give `only` or `except`, not both")
    listed = spec.get("only", spec.get("except", []))
    _check_strings(name, f"{where}.{'only' if 'only' in spec else 'except'}", listed)
    for key in listed:
        if key not in available:
            raise ManifestError(name, where, f"`{spec['recipe']}` declares no parameter `{key}`"
                                + did_you_mean(key, available))
    if "only" in spec:
        return list(listed)
    return [key for key in available if key not in listed]


def sibling_finder(path: Path) -> Finder:
    """Return a Finder for recipes beside `path`, then on the search path."""
    def find(name: str) -> Path | None:
        beside = path.parent / name
        if (beside / RECIPE_FILE).is_file():
            return beside
        return next((d for d in recipe_dirs() if d.name == name), None)

    return find


def read_recipe(path: Path, find: Finder | None = None) -> Recipe:
    """Load and check the recipe in directory `path`; `find` locates the recipes it inherits from."""
    name = path.name
    data = _manifest(path)
    if "version" not in data or not data.get("producers"):
        raise ManifestError(name, "version" if "version" not in data else "producers", "required")
    for key in ("getters", "name_params", "packages"):
        _check_strings(name, key, data.get(key, []))
    written = declarations(name, data, find or sibling_finder(path))
    recipe = Recipe(name, path, data["version"], data.get("description", ""),
                    parameters=(declared := read_parameters(name, written.specs, written.owners, written.places)),
                    aliases=alias_map(name, declared),
                    getters=tuple(data.get("getters", [])),
                    name_params=tuple(data.get("name_params", [])),
                    packages=tuple(data.get("packages", [])))
    hooks = {h: data[h] for h in HOOKS if h in data}
    producers = tuple(_producer(recipe, i, p, hooks) for i, p in enumerate(data["producers"]))
    object.__setattr__(recipe, "producers", producers)
    return recipe


def recipe_dirs(extra_roots: tuple[str, ...] = ()) -> list[Path]:
    """List every recipe directory on the search path (then extra roots), in search order.

    Two recipes of one name are an error naming both: which one a query meant would
    depend on the order of the search path.
    """
    found: dict[str, Path] = {}
    for root in map(Path, [*locations.search_path(), *extra_roots]):
        for directory in sorted(root.iterdir()) if root.is_dir() else []:
            if not (directory / RECIPE_FILE).is_file():
                continue
            if directory.name in found and found[directory.name] != directory:
                raise ManifestError(directory.name, "name", f"two recipes are called `{directory.name}`: "
                                    f"{found[directory.name]} and {directory}")
            found[directory.name] = directory
    return list(found.values())


@cache
def all_recipes(extra_roots: tuple[str, ...] = ()) -> tuple[Recipe, ...]:
    """Load every recipe on the search path and in extra roots (once per process)."""
    dirs = recipe_dirs(extra_roots)
    by_name = {d.name: d for d in dirs}
    return tuple(read_recipe(d, by_name.get) for d in dirs)


def forget_computed_defaults() -> None:
    """Forget computed defaults (for tests that pretend to be another machine)."""
    _COMPUTED.clear()


def recipe_version(name: str, extra_roots: tuple[str, ...] = ()) -> int | None:
    """Return the current version of recipe `name`, or None if there is no such recipe."""
    found = [r.version for r in all_recipes(extra_roots) if r.name == name]
    return found[0] if found else None
