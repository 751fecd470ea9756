"""Declare a recipe's parameters and check values against them.

A recipe's `recipe.json` declares each parameter it takes under `parameters`: its type, a
default (or none: then a rule must name it in `required`), choices or a range, and a one-line
description. Values are checked, and normalised (a float parameter given `100` holds
`100.0`), while a query is resolved, so a bad value fails before anything is built.

Each parameter is written once: a recipe that wraps another takes the other's declarations
with `inherits` (axq.recipe), and `repeated_declarations` names a parameter written in two
recipes, unless one of them is marked `distinct` (its own parameter that shares the name).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

from axq.errors import ManifestError, ParameterError, did_you_mean

TYPES = ("int", "float", "number", "bool", "str", "path", "list", "any")
SPEC_FIELDS = ("type", "default", "default_from", "nullable", "choices", "min", "max", "description", "aliases",
               "spellings", "kernel", "null_means", "distinct", "to")
KERNEL_SETTINGS = ("verbosity",)  # axq's own settings a query may set through a declared parameter (`kernel`)
ANY_OTHER = "*"  # in `spellings`: any other value of that name
NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "<no default>"})()


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: its type, default, allowed values and description."""

    name: str
    type: str
    description: str
    default: Any = NO_DEFAULT
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    aliases: tuple[str, ...] = ()  # other names a query may use (axs spellings): the same parameter
    default_from: str | None = None  # `module:function` (or a code.py function) computing the default
    spellings: dict[str, dict[str, Any]] | None = None  # name as written -> {value as written: axq's value}
    kernel: str | None = None  # the axq setting it is (`verbosity`): no parameter of the build, no part of identity
    null_means: Any = None  # the value null stands for (a path): a value naming the same is null, one entry
    distinct: bool = False  # its own parameter, not the one another recipe declares under this name
    owner: str = ""  # the recipe whose recipe.json writes this declaration (another one's when inherited)
    to: str | None = None  # which typed configuration of the recipe's code holds it (the kernel only keeps it)

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT or self.default_from is not None

    def check(self, value: Any) -> Any:
        """Return the value normalised to this parameter's type, or raise ParameterError."""
        if value is None:
            if self.nullable:
                return None
            raise ParameterError(self.name, value, "needs a value (null is not allowed)")
        value = self._typed(value)
        if self.null_means is not None and value == self._typed(self.null_means):
            return None  # what null means, written out: the same entry as null
        if self.choices is not None and value not in self.choices:
            words = [str(c) for c in self.choices]
            raise ParameterError(self.name, value, f"must be one of {', '.join(words)}"
                                 + did_you_mean(str(value), words))
        self._check_range(value)
        return value

    def _typed(self, value: Any) -> Any:
        """Return value as this parameter's type, or raise ParameterError."""
        kind = self.type
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        if kind in ("str", "path") and number:
            value = str(value)  # `system=123` means the name "123"
        if kind == "path" and isinstance(value, str) and value:
            return os.path.realpath(os.path.expanduser(value))  # one folder, one value: `d/`, `./d`, a link to d
        if kind == "float" and number:
            return float(value)
        if _is(kind, value):
            return value
        raise ParameterError(self.name, value, f"must be {_HUMAN[kind]}")

    def _check_range(self, value: Any) -> None:
        """Raise ParameterError if a number is outside [minimum, maximum]."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(self.name, value, f"must be at least {_num(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(self.name, value, f"must be at most {_num(self.maximum)}")

    def describe_range(self) -> str:
        """Say which values are allowed, for `axq params`."""
        if self.choices is not None:
            return "|".join(str(c) for c in self.choices)
        low = "" if self.minimum is None else _num(self.minimum)
        high = "" if self.maximum is None else _num(self.maximum)
        return f"{low}..{high}" if low or high else ""


_HUMAN = {"int": "an integer", "float": "a number", "number": "a number", "bool": "true or false",
          "str": "a string", "path": "a path", "list": "a list (a,b,...)", "any": "a value"}


def _is(kind: str, value: Any) -> bool:
    """Say whether value is of the declared kind (bools are not numbers)."""
    if kind == "any":
        return True
    if kind == "list":
        return isinstance(value, list)
    if isinstance(value, bool):
        return kind == "bool"
    return isinstance(value, _PYTHON_TYPES[kind])


_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": float, "number": (int, float),
                                                      "bool": bool, "str": str, "path": str}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def read_parameters(recipe: str, data: Any, owners: dict[str, str] | None = None,
                    places: dict[str, str] | None = None) -> dict[str, Parameter]:
    """Check a recipe's `parameters` object and return its Parameters by name.

    `owners` names the recipe that writes each declaration (default: this one), `places`
    where in this recipe.json an error about it points (default: `parameters.NAME`).
    """
    if not isinstance(data, dict):
        raise ManifestError(recipe, "parameters", f"expected an object, found {json.dumps(data)[:60]}")
    owners, places = owners or {}, places or {}
    return {name: replace(_parameter(recipe, name, spec, places.get(name, f"parameters.{name}")),
                          owner=owners.get(name, recipe)) for name, spec in data.items()}


def _parameter(recipe: str, name: str, spec: Any, where: str) -> Parameter:
    """Check one parameter's declaration and build it."""
    if not isinstance(spec, dict):
        raise ManifestError(recipe, where, f"expected an object with {', '.join(SPEC_FIELDS)}")
    for key in spec:
        if key not in SPEC_FIELDS:
            raise ManifestError(recipe, f"{where}.{key}", f"unknown key; expected one of {', '.join(SPEC_FIELDS)}"
                                + did_you_mean(key, SPEC_FIELDS))
    kind, description = spec.get("type"), spec.get("description")
    if kind not in TYPES:
        raise ManifestError(recipe, f"{where}.type", f"expected one of {', '.join(TYPES)}, found {json.dumps(kind)}")
    if not isinstance(description, str) or not description.strip():
        raise ManifestError(recipe, f"{where}.description", "required: one line saying what it is")
    return _checked_default(recipe, where, Parameter(
        name, kind, description, spec.get("default", NO_DEFAULT),
        bool(spec.get("nullable", spec.get("default", 0) is None)),
        _choices(recipe, where, spec.get("choices")),
        _bound(recipe, f"{where}.min", spec.get("min")), _bound(recipe, f"{where}.max", spec.get("max")),
        _aliases(recipe, f"{where}.aliases", spec.get("aliases", [])),
        _function_name(recipe, f"{where}.default_from", spec.get("default_from")),
        _spellings(recipe, f"{where}.spellings", spec.get("spellings"), (name, *spec.get("aliases", []))),
        _kernel(recipe, f"{where}.kernel", spec.get("kernel")), _null_means(recipe, where, spec),
        distinct=_flag(recipe, f"{where}.distinct", spec.get("distinct", False)),
        to=_target(recipe, f"{where}.to", spec.get("to"))))


def _null_means(recipe: str, where: str, spec: dict) -> Any:
    """Check `null_means`: a value a nullable parameter's null stands for."""
    means = spec.get("null_means")
    if means is not None and not (spec.get("nullable") or spec.get("default", 0) is None):
        raise ManifestError(recipe, f"{where}.null_means", "needs a nullable parameter (`nullable: true`)")
    if means is not None and not isinstance(means, (bool, int, float, str)):
        raise ManifestError(recipe, f"{where}.null_means",
                            f"expected a number, string or bool, found {json.dumps(means)[:60]}")
    return means


def _spellings(recipe: str, where: str, spellings: Any, names: tuple[str, ...]) -> dict[str, dict[str, Any]] | None:
    """Check a `spellings` object: for the parameter's name or an alias, a map of values as written to axq's."""
    if spellings is None:
        return None
    if not isinstance(spellings, dict) or not all(isinstance(m, dict) and m for m in spellings.values()):
        raise ManifestError(recipe, where, "expected an object mapping a name to an object of {value: axq's value}")
    for name, values in spellings.items():
        if name not in names:
            raise ManifestError(recipe, f"{where}.{name}", "is neither the parameter's name nor one of its aliases"
                                + did_you_mean(name, names))
        _check_spelled_values(recipe, f"{where}.{name}", values)
    return {name: dict(values) for name, values in spellings.items()}


def _check_spelled_values(recipe: str, where: str, values: dict) -> None:
    for value in values.values():
        if not isinstance(value, (type(None), bool, int, float, str)):
            raise ManifestError(recipe, where,
                                f"expected a number, string, bool or null, found {json.dumps(value)[:60]}")


def _kernel(recipe: str, where: str, kernel: Any) -> str | None:
    if kernel is not None and kernel not in KERNEL_SETTINGS:
        raise ManifestError(recipe, where, f"expected one of {', '.join(KERNEL_SETTINGS)}, found {json.dumps(kernel)}")
    return kernel


def _target(recipe: str, where: str, name: Any) -> str | None:
    if name is not None and (not isinstance(name, str) or not name.isidentifier()):
        raise ManifestError(recipe, where, f"expected the name of a configuration, found {json.dumps(name)[:60]}")
    return name


def _flag(recipe: str, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(recipe, where, f"expected true or false, found {json.dumps(value)[:60]}")
    return value


def _function_name(recipe: str, where: str, name: Any) -> str | None:
    if name is not None and (not isinstance(name, str) or not all(p.isidentifier() for p in
                                                                  name.replace(":", ".").split("."))):
        raise ManifestError(recipe, where, "expected `module:function` or a function of code.py")
    return name


def _aliases(recipe: str, where: str, aliases: Any) -> tuple[str, ...]:
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.isidentifier() for a in aliases):
        raise ManifestError(recipe, where, "expected a list of parameter names")
    return tuple(aliases)


def spelled(parameter: Parameter, name: str, value: Any) -> tuple[bool, Any]:
    """Return (True, axq's value) if `name=value` is a declared spelling of the parameter, else (False, value)."""
    from axq.query import format_value

    values = (parameter.spellings or {}).get(name)
    if not values or value is None:
        return False, value
    text = format_value(value)
    if text in values:
        return True, values[text]
    return (True, values[ANY_OTHER]) if ANY_OTHER in values else (False, value)


def alias_map(recipe: str, parameters: dict[str, Parameter]) -> dict[str, str]:
    """Map every alias to its parameter's name; raise ManifestError if an alias is taken."""
    found: dict[str, str] = {}
    for parameter in parameters.values():
        for alias in parameter.aliases:
            if alias in parameters or alias in found:
                raise ManifestError(recipe, f"parameters.{parameter.name}.aliases",
                                    f"`{alias}` names another parameter")
            found[alias] = parameter.name
    return found


def _choices(recipe: str, where: str, choices: Any) -> tuple[Any, ...] | None:
    if choices is None:
        return None
    if not isinstance(choices, list) or not choices:
        raise ManifestError(recipe, f"{where}.choices", "expected a non-empty list")
    return tuple(choices)


def _bound(recipe: str, where: str, value: Any) -> float | None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise ManifestError(recipe, where, f"expected a number, found {json.dumps(value)}")
    return value


def _checked_default(recipe: str, where: str, parameter: Parameter) -> Parameter:
    """Return the parameter if its own default passes its checks, else raise ManifestError."""
    if parameter.default is not NO_DEFAULT:
        items = parameter.default if isinstance(parameter.default, list) else [parameter.default]
        if not all(isinstance(item, (type(None), bool, int, float, str)) for item in items):
            raise ManifestError(recipe, f"{where}.default", "expected a number, string, bool, null or a list of "
                                f"those (a query must be able to state it), found {json.dumps(parameter.default)[:60]}")
        try:
            parameter.check(parameter.default)
        except ParameterError as error:
            raise ManifestError(recipe, f"{where}.default", error.problem) from None
    return parameter


def repeated_declarations(declared: dict[str, dict[str, Parameter]]) -> list[str]:
    """Name each parameter that two recipes write (copies or not), given each recipe's parameters.

    A declaration counts where it is written: an inherited one is its owner's. One marked
    `distinct` is a parameter of its own that shares the name, and is left out.
    """
    written: dict[str, list[Parameter]] = {}
    for recipe, parameters in declared.items():
        for parameter in parameters.values():
            if parameter.owner == recipe and not parameter.distinct:
                written.setdefault(parameter.name, []).append(parameter)
    return [_repeated(name, found) for name, found in sorted(written.items()) if len(found) > 1]


def _repeated(name: str, found: list[Parameter]) -> str:
    """Say where one parameter is written more than once, and whether the copies disagree."""
    agree = all(replace(p, owner="") == replace(found[0], owner="") for p in found)
    return (f"`{name}` is declared in {', '.join(p.owner for p in found)}"
            f"{' (copies)' if agree else ', and they disagree'}: inherit it (`inherits`), "
            "or mark a parameter of its own that shares the name `distinct`")
