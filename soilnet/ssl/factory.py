"""Building SSL objectives from configuration."""

from __future__ import annotations

import logging

from soilnet.models.config import ModelConfig
from soilnet.models.factory import build_climate_encoder, build_image_encoder, build_model, count_parameters
from soilnet.ssl.config import SSLConfig
from soilnet.ssl.cross_modal import CrossModalObjective
from soilnet.ssl.dino import DINOObjective
from soilnet.ssl.geo_contrastive import GeoContrastiveObjective
from soilnet.ssl.objective import SSLObjective
from soilnet.ssl.simclr import SimCLRObjective

log = logging.getLogger(__name__)


def build_objective(
    cfg: SSLConfig, model: ModelConfig, n_bands: int, n_climate_vars: int, n_months: int, window: int = 64
) -> SSLObjective:
    """The SSL objective of `cfg` around the encoders that `model` describes (`window`: patch side in px).

    `model.image.frozen` is for fine-tuning and ignored here: pretraining trains the encoder.
    """
    if model.image is None:
        raise ValueError(f"ssl.objective {cfg.objective!r} needs model.image")
    unfrozen = model.model_copy(update={"image": model.image.model_copy(update={"frozen": False})})
    if cfg.objective == "geo_contrastive":
        if model.inr is None or model.location is None:
            raise ValueError("ssl.objective 'geo_contrastive' needs model.inr and model.location")
        inr_model = build_model(unfrozen, n_bands, n_climate_vars, n_months, window)
        return log_objective(cfg, GeoContrastiveObjective(inr_model, cfg.geo))
    image = build_image_encoder(unfrozen.image, n_bands)
    if cfg.objective == "cross_modal":
        if model.climate is None:
            raise ValueError("ssl.objective 'cross_modal' needs model.climate")
        climate = build_climate_encoder(model.climate, n_climate_vars, n_months)
        objective: SSLObjective = CrossModalObjective(image, climate, cfg)
    elif cfg.objective == "simclr":
        objective = SimCLRObjective(image, cfg)
    else:
        objective = DINOObjective(image, cfg.dino)
    return log_objective(cfg, objective)


def log_objective(cfg: SSLConfig, objective: SSLObjective) -> SSLObjective:
    """`objective`, its parameter counts logged."""
    log.info(
        "ssl objective %s: %d parameters (%d trainable)",
        cfg.objective,
        count_parameters(objective),
        count_parameters(objective, trainable_only=True),
    )
    return objective
