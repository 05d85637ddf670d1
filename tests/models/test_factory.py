"""Model factory: parameter counts and logging, bad data shapes."""

import logging

import pytest
from torch import nn

from soilnet.models.config import ClimateEncoderConfig, ImageEncoderConfig, ModelConfig
from soilnet.models.factory import build_climate_encoder, build_image_encoder, build_model, count_parameters


def test_count_parameters_total_and_trainable() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    net[0].requires_grad_(False)
    assert count_parameters(net) == 8 + 3
    assert count_parameters(net, trainable_only=True) == 3


def test_build_model_logs_parameter_counts(caplog) -> None:
    cfg = ModelConfig(climate=ClimateEncoderConfig(kind="gru", hidden_size=4, num_layers=1))
    with caplog.at_level(logging.INFO, logger="soilnet.models.factory"):
        model = build_model(cfg, n_bands=3, n_climate_vars=2, n_months=6)
    total = count_parameters(model)
    assert f"model: {total} parameters ({total} trainable)" in caplog.text


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_bands must be >= 1"):
        build_image_encoder(ImageEncoderConfig(arch="resnet", timm_name="resnet18"), 0)
    with pytest.raises(ValueError, match="climate needs >= 1 variable"):
        build_climate_encoder(ClimateEncoderConfig(kind="lstm"), 0, 12)
