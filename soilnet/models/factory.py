"""Building models from configuration, and counting their parameters."""

from __future__ import annotations

import logging

from torch import nn

from soilnet.models.climate import RNNClimateEncoder, TransformerClimateEncoder
from soilnet.models.config import ClimateEncoderConfig, ImageEncoderConfig, ModelConfig
from soilnet.models.encoder import ImageEncoder
from soilnet.models.fusion import SoilNetModel
from soilnet.models.inr import LIIF
from soilnet.models.inr_model import INRSoilModel
from soilnet.models.resnet import ResNetEncoder
from soilnet.models.vit import ViTEncoder

log = logging.getLogger(__name__)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of `module` (only those with gradients when `trainable_only`)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def build_image_encoder(cfg: ImageEncoderConfig, n_bands: int) -> ImageEncoder:
    """The configured image encoder for `n_bands` inputs, pretrained weights loaded, maybe frozen."""
    if n_bands < 1:
        raise ValueError(f"n_bands must be >= 1, got {n_bands}")
    if cfg.arch == "resnet":
        encoder: ImageEncoder = ResNetEncoder(cfg.timm_name, n_bands, glam=cfg.glam, layers=cfg.resnet_layers)
    else:
        encoder = ViTEncoder(
            cfg.timm_name,
            n_bands,
            cfg.img_size,
            global_pool=cfg.global_pool,
            patch_size=cfg.patch_size,
            embed_dim=cfg.embed_dim,
            depth=cfg.depth,
            num_heads=cfg.num_heads,
        )
    if cfg.pretrained is not None:
        encoder.load_pretrained(cfg.pretrained, cfg.pretrained_bands)
    if cfg.frozen:
        encoder.freeze()
    return encoder


def build_climate_encoder(
    cfg: ClimateEncoderConfig, n_climate_vars: int, n_months: int
) -> RNNClimateEncoder | TransformerClimateEncoder:
    """The configured climate encoder for (B, n_months, n_climate_vars) series."""
    if n_climate_vars < 1 or n_months < 1:
        raise ValueError(f"climate needs >= 1 variable and month, got {n_climate_vars}, {n_months}")
    if cfg.kind == "transformer":
        return TransformerClimateEncoder(
            n_climate_vars,
            n_months,
            d_model=cfg.d_model,
            num_heads=cfg.num_heads,
            num_layers=cfg.num_layers,
            dim_feedforward=cfg.dim_feedforward,
            dropout=cfg.dropout,
            pooling=cfg.pooling,
        )
    return RNNClimateEncoder(
        cfg.kind,
        n_climate_vars,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        pooling=cfg.pooling,
    )


def build_inr_model(
    cfg: ModelConfig,
    image: ImageEncoder,
    climate: nn.Module | None,
    window: int,
    head: dict,
) -> INRSoilModel:
    """The INR model of `cfg` (``cfg.inr`` set), with its location encoder when ``cfg.location`` is set."""
    inr = LIIF(image.stage_channels, cfg.inr.hidden, cfg.inr.dim)
    jitter = round(cfg.inr.jitter * window)
    return INRSoilModel(image, climate, inr, window, cfg.branch_dim, cfg.head.hidden, cfg.location, jitter, **head)


def build_model(cfg: ModelConfig, n_bands: int, n_climate_vars: int, n_months: int, window: int = 64) -> SoilNetModel:
    """A `SoilNetModel` (an `INRSoilModel` with ``cfg.inr``, on `window` px windows) for the configuration
    and data shapes; logs its parameter counts."""
    image = build_image_encoder(cfg.image, n_bands) if cfg.image is not None else None
    climate = build_climate_encoder(cfg.climate, n_climate_vars, n_months) if cfg.climate is not None else None
    head = dict(n_targets=cfg.head.n_targets, uncertainty=cfg.head.uncertainty, dropout=cfg.head.dropout)
    if cfg.inr is not None:
        model: SoilNetModel = build_inr_model(cfg, image, climate, window, head)
    else:
        model = SoilNetModel(image, climate, cfg.branch_dim, cfg.head.hidden, **head)
    log.info(
        "model: %d parameters (%d trainable); image %d, climate %d, head %d",
        count_parameters(model),
        count_parameters(model, trainable_only=True),
        count_parameters(image) if image is not None else 0,
        count_parameters(climate) if climate is not None else 0,
        count_parameters(model.head),
    )
    return model
