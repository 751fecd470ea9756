"""Matching producer rules, specificity, default filling, dependencies and cycles."""

from __future__ import annotations

import pytest

import axq
from axq.errors import AmbiguousRuleError, CycleError, NoProducerError, UsageError
from axq.resolve import Scope, resolve, rules


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("number", {"value": 1, "label": "x"}),
        ("number,value=5", {"value": 5, "label": "x"}),
        ("number,value=5,label='7'", {"value": 5, "label": "7"}),
        ("number,value>=1", {"value": 1, "label": "x"}),
        ("number,label?", {"value": 1, "label": "x"}),
    ],
)
def test_defaults_are_filled(work, query, params):
    assert resolve(query).params == params


def test_same_query_same_identity_and_each_input_changes_it(work):
    base = resolve("sum").identity
    assert resolve("sum,value=1,offset=0").identity == base
    assert resolve("sum,offset=1").identity != base
    assert resolve("sum,value=2").identity != base


def test_dependency_query_uses_parameters(work):
    node = resolve("sum,value=3")
    assert node.deps["a"].params["value"] == 3
    assert node.deps["a"].identity == resolve("number,value=3").identity


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("numbr", "did you mean `number`"),
        ("number,colour=red", "^unknown parameter `colour`$"),
        ("number,value>5", "does not hold"),
        ("number,-number", "has tag `number`"),
    ],
)
def test_no_producer_says_why(work, query, fragment):
    with pytest.raises(NoProducerError, match=fragment):
        resolve(query)


def test_overrides_replace_query_values(work):
    assert resolve("number,value=2", {"value": 9}).params["value"] == 9


def test_most_specific_rule_wins(work):
    assert resolve("amb,left").params["side"] == "left"
    assert resolve("amb,side=right").params["side"] == "right"


def test_tie_names_the_rules(work):
    with pytest.raises(AmbiguousRuleError, match=r"toy_ambiguous \(amb,left\), toy_ambiguous \(amb,right\)"):
        resolve("amb")


def test_cycle_is_reported_with_its_path(work):
    with pytest.raises(CycleError) as caught:
        resolve("cyc_a")
    assert caught.value.cycle == ["toy_cycle[0](cyc_a)", "toy_cycle[1](cyc_b)", "toy_cycle[0](cyc_a)"]


def test_sweep_query_points_to_sweep_command(work):
    with pytest.raises(UsageError, match="axq sweep"):
        resolve("number,value:=1:2")


def test_rules_lists_matches_first_with_reasons(work):
    matches = rules("number,value=2")
    assert [m.producer.recipe.name for m in matches if m.ok] == ["toy_number", "toy_special"]
    assert all(m.reason for m in matches if not m.ok)


def test_on_equal_specificity_the_less_special_rule_wins(work):
    assert resolve("number").producer.recipe.name == "toy_number"
    assert resolve("number,value=3").producer.recipe.name == "toy_number"
    special = resolve("number,mode=special")
    assert special.producer.recipe.name == "toy_special" and special.params["mode"] == "special"


def test_an_alias_is_the_same_parameter_and_the_same_entry(work):
    node = resolve("sum,shift=2")
    assert node.params["offset"] == 2 and "shift" not in node.params
    assert node.identity == resolve("sum,offset=2").identity
    assert axq.byquery("sum,shift=2").name == axq.byquery("sum,offset=2").name


def test_collection_settings_fill_parameters_below_the_query(work):
    axq.set_settings({"offset": 5, "label": "y"})
    node = resolve("sum,value=1", scope=Scope(axq.settings()))
    assert node.params["offset"] == 5 and node.sources["offset"] == "collection"
    assert node.deps["a"].params["label"] == "y", "a setting applies wherever a rule takes the parameter"
    assert resolve("sum,value=1,offset=0", scope=Scope(axq.settings())).params["offset"] == 0
    assert axq.byquery("sum,value=1").get("total") == 6
    assert axq.byquery("sum,value=1").manifest["provenance"]["sources"]["offset"] == "collection"
    assert {p.name: p.source for p in axq.params("sum,value=1")}["offset"] == "collection"
    axq.unset_settings(["offset"])
    assert axq.settings() == {"label": "y"}
    assert axq.byquery("sum,value=1").get("total") == 1, "the memo must not answer with the old setting"


def test_settings_are_checked_against_the_declarations(work):
    from axq.errors import ParameterError, UsageError

    with pytest.raises(UsageError, match="did you mean `offset`"):
        axq.set_settings({"ofset": 1})
    with pytest.raises(ParameterError, match="must be an integer"):
        axq.set_settings({"offset": "x"})
    assert axq.settings() == {}
