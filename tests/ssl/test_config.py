"""Validation of SSLConfig."""

import pytest
from pydantic import ValidationError

from soilnet.ssl.config import DINOConfig, SSLConfig


def test_defaults_follow_the_papers() -> None:
    cfg = SSLConfig(objective="cross_modal")
    assert (cfg.temperature, cfg.symmetric, cfg.projection_dim) == (0.5, True, 128)
    dino = SSLConfig(objective="dino").dino
    assert (dino.teacher_temperature, dino.student_temperature) == (0.04, 0.1)
    assert (dino.momentum_start, dino.n_global_crops, dino.n_local_crops) == (0.996, 2, 8)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"objective": "byol"}, "objective"),
        ({"objective": "simclr", "temperature": 0}, "temperature"),
        ({"objective": "simclr", "augment": {"crop_scale": [0.8, 0.2]}}, "ssl.augment.crop_scale"),
        ({"objective": "dino", "dino": {"momentum_start": 0.99, "momentum_end": 0.9}}, "ssl.dino.momentum_end"),
        ({"objective": "dino", "dino": {"local_crop_scale": [0.0, 0.4]}}, "local_crop_scale"),
        ({"objective": "dino", "dino": {"n_global_crops": 1}}, "n_global_crops"),
        ({"objective": "dino", "extra": 1}, "extra"),
    ],
)
def test_bad_ssl_config_names_the_field(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SSLConfig.model_validate(section)


def test_dino_section_alone() -> None:
    assert DINOConfig(out_dim=16).out_dim == 16
