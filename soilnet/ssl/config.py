"""Typed configuration of the self-supervised objectives: cross-modal, SimCLR and DINO."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from soilnet.configbase import StrictModel


class AugmentConfig(StrictModel):
    """Image augmentations applied on the device inside each step."""

    flip_rot90: bool = Field(True, description="Random flip and 90-degree rotations per sample.")
    crop_scale: tuple[float, float] | None = Field(
        None,
        description="Random resized crops covering this area fraction (low, high); None: none.",
    )
    max_rotation_degrees: float = Field(
        0.0, ge=0.0, le=180.0, description="Free rotation range of resized crops (degrees)."
    )


class DINOConfig(StrictModel):
    """DINO self-distillation settings (defaults: Tresson et al.'s fork of DINO)."""

    out_dim: int = Field(65536, ge=2, description="Prototype (output) dimension of the heads.")
    hidden_dim: int = Field(2048, ge=8, description="Hidden width of the DINO head MLP.")
    bottleneck_dim: int = Field(256, ge=8, description="Bottleneck before the prototype layer.")
    teacher_temperature: float = Field(0.04, gt=0, description="Teacher softmax temperature.")
    student_temperature: float = Field(0.1, gt=0, description="Student softmax temperature.")
    momentum_start: float = Field(
        0.996, ge=0, le=1, description="Teacher EMA momentum at step 0 (cosine schedule to end)."
    )
    momentum_end: float = Field(1.0, ge=0, le=1, description="Teacher EMA momentum at the end.")
    center_momentum: float = Field(0.9, ge=0, lt=1, description="EMA of the teacher centre.")
    n_global_crops: int = Field(2, ge=2, description="Global crops (seen by the teacher).")
    n_local_crops: int = Field(8, ge=0, description="Local crops (student only).")
    global_crop_size: int = Field(224, ge=8, description="Side of global crops in pixels.")
    local_crop_size: int = Field(96, ge=8, description="Side of local crops in pixels.")
    global_crop_scale: tuple[float, float] = Field(
        (0.4, 1.0), description="Area fraction of the image a global crop covers."
    )
    local_crop_scale: tuple[float, float] = Field(
        (0.05, 0.4), description="Area fraction of the image a local crop covers."
    )

    @model_validator(mode="after")
    def _ordered(self) -> DINOConfig:
        if self.momentum_end < self.momentum_start:
            raise ValueError("ssl.dino.momentum_end must be >= ssl.dino.momentum_start")
        for name in ("global_crop_scale", "local_crop_scale"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise ValueError(f"ssl.dino.{name} must satisfy 0 < low <= high <= 1")
        return self


class GeoContrastiveConfig(StrictModel):
    """MISO's multimodal contrastive terms over INR query points (defaults: MISO's)."""

    temperature: float = Field(0.1, gt=0, description="Softmax temperature of both InfoNCE terms.")
    image_climate_weight: float = Field(
        0.1, ge=0, description="Weight of symmetric InfoNCE image <-> climate (same window)."
    )
    image_location_weight: float = Field(
        0.1, ge=0, description="Weight of symmetric InfoNCE fused image <-> location (same query point)."
    )
    n_queries: int = Field(
        14, ge=0, description="Unlabelled random query points per window besides its centre (MISO: 14 + a 6 x 6 grid)."
    )
    in_finetune: bool = Field(
        True,
        description="Also add the terms to the supervised loss while fine-tuning (MISO trains them jointly; "
        "only the labelled centre enters the supervised loss).",
    )


class SSLConfig(StrictModel):
    """A self-supervised pretraining objective."""

    objective: Literal["cross_modal", "simclr", "dino", "geo_contrastive"] = Field(
        ...,
        description="cross_modal: InfoNCE image <-> climate (SSL-SoilNet); simclr: NT-Xent on two "
        "image views; dino: self-distillation with an EMA teacher (ViTs); geo_contrastive: MISO's InfoNCE "
        "image <-> climate and fused image <-> location over INR query points (needs model.inr, model.location).",
    )
    temperature: float = Field(0.5, gt=0, description="Contrastive softmax temperature.")
    symmetric: bool = Field(True, description="cross_modal: average both directions (MISO).")
    projection_dim: int | None = Field(
        128, ge=1, description="Contrastive projection head output; None: compare raw features."
    )
    projection_hidden: list[int] = Field([512], description="Hidden widths of the contrastive projection heads.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="Augmentations.")
    dino: DINOConfig = Field(default_factory=DINOConfig, description="DINO settings (used by objective 'dino').")
    geo: GeoContrastiveConfig = Field(
        default_factory=GeoContrastiveConfig, description="Settings of objective 'geo_contrastive'."
    )

    @model_validator(mode="after")
    def _crop_scale(self) -> SSLConfig:
        if self.augment.crop_scale is not None:
            low, high = self.augment.crop_scale
            if not 0 < low <= high <= 1:
                raise ValueError("ssl.augment.crop_scale must satisfy 0 < low <= high <= 1")
        return self
