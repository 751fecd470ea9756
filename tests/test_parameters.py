"""Declared parameters: values checked and normalised while a query is resolved, before any build."""

from __future__ import annotations

import shutil

import pytest

import axq
from axq.errors import ParameterError
from axq.parameters import Parameter


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (Parameter("n", "int", "d"), 3, 3),
        (Parameter("n", "int", "d"), 3.0, 3),
        (Parameter("q", "float", "d"), 100, 100.0),
        (Parameter("q", "number", "d"), 100, 100),
        (Parameter("s", "str", "d"), 123, "123"),
        (Parameter("b", "bool", "d"), True, True),
        (Parameter("x", "int", "d", nullable=True), None, None),
        (Parameter("c", "str", "d", choices=("a", "b")), "b", "b"),
        (Parameter("r", "int", "d", minimum=1, maximum=3), 3, 3),
        (Parameter("l", "list", "d"), [1, 2], [1, 2]),
    ],
)
def test_accepted_values_are_normalised(parameter, value, expected):
    checked = parameter.check(value)
    assert checked == expected and type(checked) is type(expected)


@pytest.mark.parametrize(
    ("parameter", "value", "fragment"),
    [
        (Parameter("n", "int", "d"), "three", "must be an integer"),
        (Parameter("n", "int", "d"), 2.5, "must be an integer"),
        (Parameter("n", "int", "d"), True, "must be an integer"),
        (Parameter("b", "bool", "d"), 1, "must be true or false"),
        (Parameter("n", "int", "d"), None, "null is not allowed"),
        (Parameter("c", "str", "d", choices=("Offline", "Server")), "Offlne", "did you mean `Offline`?"),
        (Parameter("r", "int", "d", minimum=1), 0, "must be at least 1"),
        (Parameter("r", "float", "d", maximum=0.5), 0.75, "must be at most 0.5"),
    ],
)
def test_refused_values_say_why(parameter, value, fragment):
    with pytest.raises(ParameterError) as caught:
        parameter.check(value)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"bad parameter `{parameter.name}=")


def test_mistyped_choice_exits_2_before_anything_is_built(work, axq_cli):
    code, _, err = axq_cli("byquery", "failing,kind=usr")
    assert code == 2
    assert "must be one of user, bug, disk_full; did you mean `user`?" in err
    assert not work.exists() or not any(p for p in work.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("verb", ["byquery", "plan"])
def test_bad_value_in_a_dependency_chain_fails_before_building(work, axq_cli, verb):
    code, _, err = axq_cli(verb, "sum,value=two")
    assert code == 2 and "bad parameter `value=two`" in err and "must be an integer" in err
    assert not work.exists() or not [p for p in work.iterdir() if not p.name.startswith(".")]


def test_recipe_check_refuses_a_combination(work):
    with pytest.raises(ParameterError, match=r"count=6.*must be at most limit=5"):
        axq.plan("planned_sum,count=6")
    assert len(axq.plan("planned_sum,count=6,limit=6")) == 7


def test_sweep_points_are_checked_before_the_first_point_runs(work):
    with pytest.raises(ParameterError, match="value=x"):
        axq.sweep("number,value:=1:x", ["stored"])
    assert not work.exists() or not [p for p in work.iterdir() if not p.name.startswith(".")]


def test_params_lists_values_sources_and_declarations(work):
    found = {p.name: p for p in axq.params("planned_sum,count=3")}
    assert set(found) == {"count", "limit", "repeat", "top"}
    assert (found["count"].value, found["count"].source, found["count"].default) == (3, "query", 2)
    assert (found["limit"].value, found["limit"].source) == (5, "default")
    assert found["count"].minimum == 0 and found["count"].description.startswith("how many")


def test_params_runs_the_recipe_check_as_plan_does(work, axq_cli):
    code, _, err = axq_cli("params", "planned_sum,count=9")
    assert code == 2 and "must be at most limit=5" in err


def test_a_computed_default_enters_the_identity(work, monkeypatch):
    from axq.recipe import forget_computed_defaults

    here = axq.byquery("measured_here")
    assert here.get("where") == "machine-a"
    assert {p.name: p.source for p in axq.params("measured_here")}["machine"] == "computed"
    monkeypatch.setenv("AXQ_TEST_MACHINE", "machine-b")
    forget_computed_defaults()
    shutil.rmtree(work / ".index" / "memo")  # the memo is keyed by host: another machine has its own
    there = axq.byquery("measured_here")
    assert there.get("where") == "machine-b" and there.identity != here.identity
    assert axq.byquery("measured_here,machine=machine-a").name == here.name, "results of another machine, by name"


def test_a_path_is_its_real_path_and_what_null_means_is_null(tmp_path, monkeypatch):
    """`d/`, `./d`, `~/d` and a link to d are one value; the folder null stands for is null (issue 22)."""
    folder = (tmp_path / "d").resolve()
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = Parameter("p", "path", "d", nullable=True)
    for written in (str(folder), f"{folder}/", "./d", "d", "~/d", str(tmp_path / "link")):
        assert path.check(written) == str(folder), written
    assert path.check(None) is None and path.check(7) == str(tmp_path.resolve() / "7")
    with pytest.raises(ParameterError, match="must be a path"):
        path.check(True)
    default = Parameter("p", "path", "d", nullable=True, null_means=str(folder))
    assert default.check(f"{tmp_path}/link/") is None and default.check(str(tmp_path)) == str(tmp_path.resolve())


def test_null_means_needs_a_nullable_parameter():
    from axq.errors import ManifestError
    from axq.parameters import read_parameters

    with pytest.raises(ManifestError, match=r"null_means.*needs a nullable parameter"):
        read_parameters("toy", {"p": {"type": "path", "null_means": "/x", "description": "d"}})
    assert read_parameters("toy", {"p": {"type": "path", "nullable": True, "null_means": "/x",
                                         "description": "d"}})["p"].null_means == "/x"


# ----------------------------------------------------------------------------- declared once


def test_two_declarations_of_one_name_are_named_copied_or_disagreeing():
    from dataclasses import replace

    from axq.parameters import repeated_declarations

    size = Parameter("size", "int", "samples per call", default=8, owner="a")
    inherited = {"a": {"size": size}, "b": {"size": size}}  # b takes a's declaration: written once
    assert repeated_declarations(inherited) == []
    copied = {"a": {"size": size}, "b": {"size": replace(size, owner="b")}}
    assert repeated_declarations(copied) == [
        "`size` is declared in a, b (copies): inherit it (`inherits`), "
        "or mark a parameter of its own that shares the name `distinct`"]
    disagreeing = {"a": {"size": size}, "b": {"size": replace(size, owner="b", default=16)}}
    assert "and they disagree" in repeated_declarations(disagreeing)[0]
    distinct = {"a": {"size": size}, "b": {"size": replace(size, owner="b", default=16, distinct=True)}}
    assert repeated_declarations(distinct) == []


def test_every_shipped_parameter_is_declared_once():
    """A parameter two recipe.json files write (loadgen_peak copying loadgen_program's, say) is a copy that drifts."""
    from axq.parameters import repeated_declarations
    from axq.recipe import all_recipes

    recipes = {r.name: r.parameters for r in all_recipes()}
    assert repeated_declarations(recipes) == []
    peak, program = recipes["loadgen_peak"], recipes["loadgen_program"]
    assert peak["batch_size"].owner == "loadgen_program" and peak["imagenet_dir"].owner == "dataset_imagenet"
    assert {n for n, p in peak.items() if p.owner == "loadgen_peak"} == {"peak_start_qps", "peak_max_qps",
                                                                          "peak_tolerance"}
    assert peak["num_threads"].aliases == program["num_threads"].aliases == ("threads_per_instance",)
    assert "loadgen_mode" not in peak and "int8" not in (peak["precision"].choices or ())
