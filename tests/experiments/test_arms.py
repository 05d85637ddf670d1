"""Every built-in design builds valid arm recipes at both scales: the demo's tiny recipes and the papers'."""

from __future__ import annotations

import pytest

from soilnet.config import load_config
from soilnet.evaluation.design import load_design
from soilnet.experiments.arms import arm_config, arm_recipe, baseline_inputs, deep_inputs, pretrain_key

DESIGNS = ["soilnet-table", "ssl-soilnet-table", "dino-table"]
PAPER = "jobs/configs/experiment-europe.yaml"


@pytest.mark.parametrize("name", DESIGNS)
@pytest.mark.parametrize("config", ["jobs/configs/demo.yaml", PAPER])
def test_builtin_designs_build_valid_recipes_at_both_scales(name, config):
    cfg = load_config(config)
    design = load_design(name)
    for arm in design.arms:
        arm_cfg = arm_config(cfg, design, arm, seed=2, runs=cfg.data.url("runs") + "/x")
        assert arm_cfg.train.seed == 2 and arm_cfg.finetune.only_folds is None
        if not arm.is_deep:
            continue
        recipe = arm_recipe(cfg, arm)
        if config == PAPER and name != "ssl-soilnet-table":
            assert recipe.data.n_months == 61
        if arm.pretrain:
            assert recipe.ssl is not None, f"{name}/{arm.name} pretrains a recipe without an ssl section"


def test_recipe_changes_of_the_ablation_arms():
    cfg = load_config(PAPER)
    arms = {a.name: a for a in load_design("soilnet-table").arms}
    resnet, both, lstm = (arm_recipe(cfg, arms[n]) for n in ("resnet", "resnet+glam+lstm", "lstm"))
    assert resnet.model.climate is None and resnet.model.image.glam is False
    assert both.model.climate.kind == "lstm" and both.model.image.glam is True
    assert lstm.model.image is None
    assert deep_inputs(both) == "64 px window (14 bands) + 61 months climate"
    ssl = {a.name: a for a in load_design("ssl-soilnet-table").arms}
    patch = arm_recipe(cfg, ssl["ssl-patch128"])
    assert (patch.data.patch_px, patch.model.image.img_size, patch.model.image.patch_size) == (128, 128, 16)
    assert arm_recipe(cfg, ssl["ssl-frozen"]).model.image.frozen is True
    # the same recipe and settings share one pretraining; another window does not
    assert pretrain_key(arm_recipe(cfg, ssl["ssl"]), cfg) == pretrain_key(arm_recipe(cfg, ssl["ssl-patch64"]), cfg)
    assert pretrain_key(arm_recipe(cfg, ssl["ssl"]), cfg) != pretrain_key(patch, cfg)
    fair = {a.name: a for a in load_design("dino-table").arms}
    assert baseline_inputs(fair["fair_rf"].baseline, [3, 7, 15, 31], 14, 14) == (
        "mean+std over 3/7/15/31 px (14 bands) + climate summary (14 vars x mean/std/min/max)"
    )
    assert baseline_inputs(fair["dino+rf"].baseline, [3], 14, 14).startswith("frozen dino+mlp image features")
