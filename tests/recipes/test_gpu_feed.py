"""Training FLOPs per sample (FlopCounterMode) and the H100 feed figure derived from them."""

from __future__ import annotations

import pytest

from soilnet.recipes.gpu_feed import H100_BF16_FLOPS, UTILISATION, Feed, recipe_feeds, training_flops
from soilnet.recipes.recipe import load_recipe


def test_flops_grow_with_the_batch_free_cost_of_a_sample(tiny_recipe: str) -> None:
    recipe = load_recipe(tiny_recipe)
    finetune = training_flops(recipe, "finetune", batch=2)
    assert finetune > 0
    assert training_flops(recipe, "finetune", batch=4) == pytest.approx(finetune, rel=0.01)  # per sample
    bigger = recipe.model_copy(update={"data": recipe.data.model_copy(update={"patch_px": 32})})
    bigger = bigger.model_copy(
        update={
            "model": bigger.model.model_copy(update={"image": bigger.model.image.model_copy(update={"img_size": 32})})
        }
    )
    assert training_flops(bigger, "finetune") > 2 * finetune  # four times the tokens
    feeds = recipe_feeds(recipe)
    assert [f.stage for f in feeds] == ["finetune", "pretrain"]
    assert feeds[1].flops_per_sample > 0


def test_h100_rate_and_cores() -> None:
    feed = Feed("x", "finetune", 4.2e9)
    assert feed.samples_per_s == pytest.approx(UTILISATION * H100_BF16_FLOPS / 4.2e9)
    assert feed.cores(feed.samples_per_s / 10) == pytest.approx(10)
    twice = Feed("x", "finetune", 4.2e9, window_values=2 * 14 * 64 * 64)  # windows twice the measured ones
    assert twice.cores(feed.samples_per_s / 10) == pytest.approx(20)


def test_pretraining_needs_an_ssl_section(recipe) -> None:
    supervised = recipe("soilnet-tiny")
    assert supervised.ssl is None
    with pytest.raises(ValueError, match="no ssl section"):
        training_flops(supervised, "pretrain")
