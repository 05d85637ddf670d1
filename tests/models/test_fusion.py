"""Every recipe combination: output shapes and dtypes, gradients to exactly the trainable weights."""

import pytest
import torch

from soilnet.models.config import ModelConfig
from soilnet.models.factory import build_model

TINY_RECIPES = ["soilnet-tiny", "ssl-soilnet-tiny", "dino-tiny"]


def variants(recipe) -> list[tuple[str, ModelConfig]]:
    """The recipe's model and its image-only and climate-only ablations."""
    model = recipe.model
    out = [("full", model)]
    if model.image is not None and model.climate is not None:
        out.append(("image-only", model.model_copy(update={"climate": None})))
        out.append(("climate-only", model.model_copy(update={"image": None})))
    return out


@pytest.mark.parametrize("name", TINY_RECIPES)
def test_shapes_dtypes_and_gradients(name, recipe, sample_batch) -> None:
    tiny = recipe(name)
    d = tiny.data
    image, climate = sample_batch(tiny, batch=3)
    for variant, cfg in variants(tiny):
        model = build_model(cfg, d.n_bands, d.n_climate_vars, d.n_months).train()
        out = model(image, climate)
        assert out["prediction"].shape == (3, cfg.head.n_targets), variant
        assert all(v.dtype == torch.float32 for v in out.values())
        assert set(out) == ({"prediction", "log_var"} if cfg.head.uncertainty else {"prediction"})
        sum(v.sum() for v in out.values()).backward()
        for pname, p in model.named_parameters():
            # Not None is the test: timm zero-initialises the last BatchNorm of each residual
            # block, so the convolutions before it get exactly zero gradient at the first step.
            if p.requires_grad:
                assert p.grad is not None and torch.isfinite(p.grad).all(), (variant, pname)
            else:
                assert p.grad is None, (variant, pname)
        first = next(p for p in model.parameters() if p.requires_grad)
        assert first.grad.abs().sum() > 0, variant  # the input end of the network learns


def test_frozen_backbone_trains_only_the_head(recipe) -> None:
    model = recipe("dino-tiny").build_model()
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head"}
    model.train()
    assert model.head.training and not model.image_encoder.training


def test_missing_branch_input_is_named(recipe, sample_batch) -> None:
    tiny = recipe("soilnet-tiny")
    model = tiny.build_model()
    image, climate = sample_batch(tiny)
    with pytest.raises(ValueError, match="pass climate"):
        model(image)
    with pytest.raises(ValueError, match="pass image"):
        model(climate=climate)
