"""Building SSL objectives from configuration."""

from __future__ import annotations

import logging

from soilnet.models.config import ModelConfig
from soilnet.models.factory import build_climate_encoder, build_image_encoder, count_parameters
from soilnet.ssl.config import SSLConfig
from soilnet.ssl.cross_modal import CrossModalObjective
from soilnet.ssl.dino import DINOObjective
from soilnet.ssl.objective import SSLObjective
from soilnet.ssl.simclr import SimCLRObjective

log = logging.getLogger(__name__)


def build_objective(
    cfg: SSLConfig, model: ModelConfig, n_bands: int, n_climate_vars: int, n_months: int
) -> SSLObjective:
    """The SSL objective of `cfg` around the encoders that `model` describes.

    `model.image.frozen` is for fine-tuning and ignored here: pretraining trains the encoder.
    """
    if model.image is None:
        raise ValueError(f"ssl.objective {cfg.objective!r} needs model.image")
    image = build_image_encoder(model.image.model_copy(update={"frozen": False}), n_bands)
    if cfg.objective == "cross_modal":
        if model.climate is None:
            raise ValueError("ssl.objective 'cross_modal' needs model.climate")
        climate = build_climate_encoder(model.climate, n_climate_vars, n_months)
        objective: SSLObjective = CrossModalObjective(image, climate, cfg)
    elif cfg.objective == "simclr":
        objective = SimCLRObjective(image, cfg)
    else:
        objective = DINOObjective(image, cfg.dino)
    log.info(
        "ssl objective %s: %d parameters (%d trainable)",
        cfg.objective,
        count_parameters(objective),
        count_parameters(objective, trainable_only=True),
    )
    return objective
