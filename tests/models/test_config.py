"""Validation of ModelConfig and its sections: bad values are rejected with the field named."""

import pytest
from pydantic import ValidationError

from soilnet.models.config import ClimateEncoderConfig, ImageEncoderConfig, ModelConfig


def test_defaults_are_the_soilnet_reference() -> None:
    climate = ClimateEncoderConfig(kind="lstm")
    assert (climate.hidden_size, climate.num_layers) == (128, 2)
    image = ImageEncoderConfig(arch="resnet", timm_name="resnet101")
    assert image.img_size == 64 and image.glam


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"arch": "resnet", "timm_name": "resnet18", "patch_size": 8}, "image.patch_size"),
        ({"arch": "vit", "timm_name": "vit_tiny_patch16_224", "resnet_layers": [1, 1, 1, 1]}, "image.resnet_layers"),
        ({"arch": "resnet", "timm_name": "resnet18", "pretrained_bands": [0, 0, 1]}, "duplicates"),
        ({"arch": "resnet", "timm_name": "resnet18", "pretrained_bands": [-1, 0, 1]}, ">= 0"),
        ({"arch": "resnet", "timm_name": "resnet18", "img_size": 4}, "img_size"),
        ({"arch": "convnext", "timm_name": "convnext_tiny"}, "arch"),
    ],
)
def test_bad_image_config_names_the_field(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ImageEncoderConfig.model_validate(section)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"kind": "transformer", "pooling": "last"}, "climate.pooling"),
        ({"kind": "lstm", "pooling": "token"}, "climate.pooling"),
        ({"kind": "transformer", "pooling": "mean", "d_model": 30, "num_heads": 8}, "climate.d_model"),
        ({"kind": "lstm", "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_climate_config_names_the_field(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ClimateEncoderConfig.model_validate(section)


def test_model_needs_a_branch_and_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="at least one of 'image' or 'climate'"):
        ModelConfig()
    with pytest.raises(ValidationError, match="hidden_sise"):
        ModelConfig.model_validate({"climate": {"kind": "gru", "hidden_sise": 3}})
