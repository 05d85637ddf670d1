"""Experiment designs: the built-in ones load, and a wrong design names what is wrong."""

import pytest

from soilnet.evaluation.design import DesignConfig, load_design

DEEP = {"name": "deep", "recipe": "soilnet"}
FAIR = {"name": "fair_rf", "baseline": {"model": "random_forest", "inputs": "context"}}


@pytest.mark.parametrize("name", ["soilnet-table", "ssl-soilnet-table", "dino-table"])
def test_builtin_designs_load_with_the_fair_forest_as_reference(name):
    design = load_design(name)
    arms = {a.name: a for a in design.arms}
    assert design.name == name and design.reference == "fair_rf"
    assert arms["fair_rf"].baseline.inputs == "context"
    assert any(a.is_deep for a in design.arms)


def test_a_user_design_file_loads(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\narms:\n  - {name: deep, recipe: soilnet}\n"
        "  - {name: fair_rf, baseline: {model: linear, inputs: context}}\n"
    )
    assert [a.name for a in load_design(str(path)).arms] == ["deep", "fair_rf"]
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        load_design("nope")


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ([DEEP, DEEP, FAIR], "arm names repeat"),
        ([DEEP, {"name": "x"}, FAIR], "either recipe"),
        ([DEEP, {**FAIR, "name": "other"}], "reference 'fair_rf' is not an arm"),
        ([{**DEEP, "pretrain_from": "deep"}, FAIR], "not a pretraining arm"),
        (
            [DEEP, {"name": "r", "baseline": {"model": "random_forest", "inputs": "ssl_features"}}, FAIR],
            "encoders_from",
        ),
    ],
)
def test_wrong_designs_are_refused(arms, message):
    with pytest.raises(ValueError, match=message):
        DesignConfig(name="d", arms=arms)
