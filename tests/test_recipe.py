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
