"""Recipe manifests are checked eagerly: errors name the recipe, the field and the problem."""

from __future__ import annotations

import json

import pytest

from axq.errors import ManifestError
from axq.recipe import read_recipe

GOOD = {"version": 1, "producers": [{"tags": ["t"]}]}


@pytest.mark.parametrize(
    ("manifest", "field", "fragment"),
    [
        ({**GOOD, "colour": 1}, "colour", "unknown key"),
        ({**GOOD, "version": "1"}, "version", "expected an integer"),
        ({**GOOD, "version": True}, "version", "expected an integer"),
        ({"producers": [{"tags": ["t"]}]}, "version", "required"),
        ({"version": 1, "producers": []}, "producers", "required"),
        ({**GOOD, "producers": [{"tags": []}]}, "producers[0].tags", "at least one tag"),
        ({**GOOD, "producers": [{"tags": [1]}]}, "producers[0].tags", "expected strings"),
        ({**GOOD, "producers": [{"tags": ["t"], "deps": "x"}]}, "producers[0].deps", "expected an object"),
        ({**GOOD, "producers": [{"tags": ["t"], "bild": "x"}]}, "producers[0].bild", "unknown key"),
        ({**GOOD, "producers": ["t"]}, "producers[0]", "expected an object"),
        ({**GOOD, "getters": [3]}, "getters", "expected strings"),
        ({**GOOD, "defaults": {"a": 1}}, "defaults", "unknown key"),
        ({**GOOD, "parameters": {"o": {"type": "any", "default": {}, "description": "d"}}}, "parameters.o.default",
         "a query must be able to state it"),
        ({**GOOD, "parameters": {"o": {"type": "integer", "description": "d"}}}, "parameters.o.type",
         "expected one of"),
        ({**GOOD, "parameters": {"o": {"type": "int"}}}, "parameters.o.description", "required"),
        ({**GOOD, "parameters": {"o": {"type": "int", "descripton": "d"}}}, "parameters.o.descripton",
         "did you mean `description`"),
        ({**GOOD, "parameters": {"o": {"type": "int", "default": "x", "description": "d"}}}, "parameters.o.default",
         "must be an integer"),
        ({**GOOD, "parameters": {"o": {"type": "str", "default": "c", "choices": ["a", "b"], "description": "d"}}},
         "parameters.o.default", "must be one of a, b"),
        ({**GOOD, "parameters": {"o": {"type": "int", "default": 0, "min": 1, "description": "d"}}},
         "parameters.o.default", "at least 1"),
        ({**GOOD, "producers": [{"tags": ["t"], "defaults": {"undeclared": 1}}]}, "producers[0]",
         "parameter `undeclared` is not declared"),
        ({**GOOD, "parameters": {"o": {"type": "int", "description": "d"}},
          "producers": [{"tags": ["t"], "defaults": {"o": "x"}}]}, "producers[0].defaults.o", "must be an integer"),
        ({**GOOD, "check": 3}, "check", "expected a function name"),
        ({**GOOD, "producers": [{"tags": ["t"], "params": {"x": [{"a": 1}]}}]}, "producers[0].params.x",
         "a list of those"),
    ],
)
def test_bad_manifests_are_named(tmp_path, manifest, field, fragment):
    recipe_dir = tmp_path / "my_recipe"
    recipe_dir.mkdir()
    (recipe_dir / "recipe.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError) as caught:
        read_recipe(recipe_dir)
    assert (caught.value.entry, caught.value.field) == ("my_recipe", field)
    assert fragment in str(caught.value)


def test_bad_json_is_a_manifest_error(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "recipe.json").write_text("{ not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_recipe(tmp_path / "r")


def test_defaults_merge_recipe_then_producer(tmp_path):
    (tmp_path / "r").mkdir()
    declared = {"a": {"type": "int", "default": 1, "description": "a"}, "b": {"type": "int", "default": 1,
                                                                            "description": "b"}}
    manifest = {"version": 2, "parameters": declared, "producers": [{"tags": ["t"], "defaults": {"b": 2}}]}
    (tmp_path / "r" / "recipe.json").write_text(json.dumps(manifest))
    producer = read_recipe(tmp_path / "r").producers[0]
    assert producer.defaults == {"a": 1, "b": 2}
    assert producer.label == "r[0](t)"


def test_every_shipped_recipe_loads():
    from axq.recipe import all_recipes

    names = {r.name for r in all_recipes()}
    assert {"dataset_digits"} <= names


# ----------------------------------------------------------------------------- inherited parameters

BASE = {"version": 1, "producers": [{"tags": ["base"]}], "parameters": {
    "size": {"type": "int", "default": 8, "min": 1, "description": "samples per call"},
    "mode": {"type": "str", "default": "a", "choices": ["a", "b", "c"], "description": "the mode"},
    "dir": {"type": "str", "description": "a folder"},
}}


def _recipes(root, **manifests):
    """Write recipes side by side under root; return the directory of the last one."""
    for name, manifest in manifests.items():
        (root / name).mkdir()
        (root / name / "recipe.json").write_text(json.dumps(manifest))
    return root / name


def _wrapper(*inherits, parameters=None):
    return {"version": 1, "producers": [{"tags": ["wrap"]}], "inherits": list(inherits),
            "parameters": parameters or {}}


def test_a_recipe_inherits_declarations_instead_of_copying_them(tmp_path):
    wrapper = _recipes(tmp_path, base=BASE, wrap=_wrapper(
        {"recipe": "base", "only": ["size", "mode"], "overrides": {"mode": {"default": None, "choices": ["a", "b"]}}},
        parameters={"own": {"type": "bool", "default": True, "description": "its own"}}))
    recipe = read_recipe(wrapper)
    assert list(recipe.parameters) == ["size", "mode", "own"]  # inherited first, in the base's order
    base = read_recipe(tmp_path / "base").parameters
    assert recipe.parameters["size"] == base["size"] and recipe.parameters["size"].owner == "base"
    mode = recipe.parameters["mode"]
    assert (mode.default, mode.nullable, mode.choices, mode.description) == (None, True, ("a", "b"), "the mode")
    assert mode.owner == "base" and recipe.parameters["own"].owner == "wrap"
    assert recipe.producers[0].defaults == {"size": 8, "mode": None, "own": True}


def test_except_takes_the_rest_and_inheritance_is_transitive(tmp_path):
    middle = {**_wrapper({"recipe": "base", "except": ["dir"]}), "producers": [{"tags": ["middle"]}]}
    top = _recipes(tmp_path, base=BASE, middle=middle, top=_wrapper({"recipe": "middle", "except": ["mode"]}))
    assert list(read_recipe(top).parameters) == ["size"]
    assert read_recipe(top).parameters["size"].owner == "base"


@pytest.mark.parametrize(
    ("inherits", "parameters", "field", "fragment"),
    [
        ({"recipe": "nowhere"}, {}, "inherits[0].recipe", "no recipe `nowhere`"),
        ({"only": ["size"]}, {}, "inherits[0].recipe", "required"),
        ({"recipe": "base", "only": ["sise"]}, {}, "inherits[0]", "did you mean `size`"),
        ({"recipe": "base", "only": ["size"], "except": ["dir"]}, {}, "inherits[0]", "not both"),
        ({"recipe": "base", "only": ["size"], "overrides": {"mode": {"default": "b"}}}, {},
         "inherits[0].overrides.mode", "not a parameter taken from `base`"),
        ({"recipe": "base", "overrides": {"size": {"defualt": 2}}}, {}, "inherits[0].overrides.size.defualt",
         "did you mean `default`"),
        ({"recipe": "base", "overrides": {"mode": {"default": "d"}}}, {}, "inherits[0].overrides.mode.default",
         "must be one of a, b, c"),
        ({"recipe": "base", "only": ["size"]}, {"size": {"type": "int", "description": "again"}}, "parameters.size",
         "inherited from `base` already"),
        ({"recipe": "base", "colour": 1}, {}, "inherits[0].colour", "unknown key"),
        ({"recipe": "wrap"}, {}, "inherits[0].recipe", "inherits from itself: wrap -> wrap"),
    ],
)
def test_bad_inheritance_is_named(tmp_path, inherits, parameters, field, fragment):
    wrapper = _recipes(tmp_path, base=BASE, wrap=_wrapper(inherits, parameters=parameters))
    with pytest.raises(ManifestError) as caught:
        read_recipe(wrapper)
    assert (caught.value.entry, caught.value.field) == ("wrap", field)
    assert fragment in str(caught.value)
