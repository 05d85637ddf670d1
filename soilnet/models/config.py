"""Typed configuration of the supervised models: image encoder, climate encoder, fusion and head."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from soilnet.configbase import StrictModel


class ImageEncoderConfig(StrictModel):
    """A timm image backbone over (B, C, P, P) patches with any number of bands."""

    arch: Literal["resnet", "vit"] = Field(..., description="Backbone family.")
    timm_name: str = Field(
        ...,
        min_length=1,
        description="timm model name, e.g. 'resnet101' or 'vit_base_patch16_224'.",
    )
    img_size: int = Field(64, ge=8, description="Side of the square input patch in pixels.")
    patch_size: int | None = Field(None, ge=1, description="ViT only: token patch size (overrides the timm default).")
    embed_dim: int | None = Field(None, ge=8, description="ViT only: token width override.")
    depth: int | None = Field(None, ge=1, description="ViT only: number of transformer blocks.")
    num_heads: int | None = Field(None, ge=1, description="ViT only: attention heads per block.")
    resnet_layers: list[int] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="ResNet only: blocks per stage override (tiny test models, e.g. [1,1,1,1]).",
    )
    glam: bool = Field(True, description="ResNet only: GLAM attention after layer 2.")
    global_pool: Literal["avg", "token"] = Field(
        "avg",
        description="ViT pooling: mean of patch tokens ('avg', needed by the dense mode) or the "
        "class token ('token', as in DINO). ResNets always average.",
    )
    pretrained: str | None = Field(
        None,
        description="Local path or s3:// URL of pretrained weights (.safetensors or a torch "
        "state dict); never a model hub.",
    )
    pretrained_bands: list[int] = Field(
        [0, 1, 2],
        min_length=1,
        description="Input band index that receives each channel of the pretrained first layer "
        "(for RGB weights: the bands holding R, G, B); every other band gets a clone of the "
        "pretrained channel 0 (R).",
    )
    frozen: bool = Field(False, description="Freeze the backbone (no gradients, eval mode).")

    @model_validator(mode="after")
    def _family_fields(self) -> ImageEncoderConfig:
        vit_only = {"patch_size", "embed_dim", "depth", "num_heads"}
        if self.arch == "resnet":
            given = sorted(f for f in vit_only if getattr(self, f) is not None)
            if given:
                raise ValueError(f"image.{given[0]} applies to arch 'vit' only, not 'resnet'")
        elif self.resnet_layers is not None:
            raise ValueError("image.resnet_layers applies to arch 'resnet' only, not 'vit'")
        if len(set(self.pretrained_bands)) != len(self.pretrained_bands):
            raise ValueError(f"image.pretrained_bands has duplicates: {self.pretrained_bands}")
        if min(self.pretrained_bands) < 0:
            raise ValueError(f"image.pretrained_bands must be >= 0: {self.pretrained_bands}")
        return self


class ClimateEncoderConfig(StrictModel):
    """An encoder of monthly climate series (B, T, V)."""

    kind: Literal["lstm", "gru", "transformer"] = Field(..., description="Encoder type.")
    hidden_size: int = Field(128, ge=1, description="RNN hidden size (output width of RNNs).")
    num_layers: int = Field(2, ge=1, description="Stacked RNN layers or transformer blocks.")
    d_model: int = Field(512, ge=8, description="Transformer: per-month embedding width.")
    num_heads: int = Field(8, ge=1, description="Transformer: attention heads.")
    dim_feedforward: int = Field(1024, ge=8, description="Transformer: feed-forward width.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout inside the encoder.")
    pooling: Literal["last", "mean", "token"] = Field(
        "last",
        description="Summary of the series: last RNN state, masked mean over valid months, or a "
        "learned summary token (transformer only).",
    )

    @model_validator(mode="after")
    def _pooling_fits_kind(self) -> ClimateEncoderConfig:
        if self.kind == "transformer":
            if self.pooling == "last":
                raise ValueError("climate.pooling 'last' is for RNNs; use 'token' or 'mean'")
            if self.d_model % self.num_heads:
                raise ValueError(
                    f"climate.d_model {self.d_model} is not divisible by climate.num_heads {self.num_heads}"
                )
        elif self.pooling == "token":
            raise ValueError("climate.pooling 'token' is for the transformer; use 'last' or 'mean'")
        return self


class InrConfig(StrictModel):
    """A LIIF-style implicit neural representation over the image encoder's stages (MISO; `soilnet.models.inr`)."""

    dim: int = Field(256, ge=8, description="Embedding width of a query point (MISO: 1024).")
    hidden: int = Field(256, ge=8, description="Hidden width of each stage's MLP over [cell feature, offset].")
    jitter: float = Field(
        0.25,
        ge=0.0,
        lt=0.5,
        description="Training: each window is shifted by up to this fraction of its side (MISO: 62 of 250 px), so "
        "labelled points are queried off-centre as `soilnet query` queries them; zeros (the normalised mean, "
        "invalid in a mask channel) fill the edge. 0: labelled points at the centre.",
    )


class LocationConfig(StrictModel):
    """Multi-scale sinusoidal location encoder (`soilnet.models.location`), used by the geo-contrastive terms."""

    kind: Literal["grid", "sphere"] = Field(
        "sphere",
        description="grid: Space2Vec grid cells of projected x/y (MISO); sphere: the same scales over lon/lat "
        "as 3-D unit vectors, no seam at +-180 degrees.",
    )
    n_scales: int = Field(64, ge=1, description="Number of wavelengths (MISO: 64, giving 256 values for x/y).")
    min_wavelength_m: float = Field(1_000.0, gt=0, description="Shortest wavelength in metres.")
    max_wavelength_m: float = Field(4_000_000.0, gt=0, description="Longest wavelength in metres.")
    hidden: int = Field(256, ge=8, description="Width of the residual MLP.")
    n_blocks: int = Field(3, ge=0, description="Residual blocks (ReLU, dropout, LayerNorm) of the MLP.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout inside the residual blocks.")
    epsg: int | None = Field(
        None,
        description="CRS of the x/y the samples carry; the sphere variant converts them to lon/lat. None: the "
        "raster cube's, set when a training job loads the recipe.",
    )
    pixel_m: float | None = Field(
        None,
        gt=0,
        description="Raster pixel size in metres (places query points around a sample's x/y). None: the raster "
        "cube's, set when a training job loads the recipe.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> LocationConfig:
        if self.max_wavelength_m < self.min_wavelength_m:
            raise ValueError("location.max_wavelength_m must be >= location.min_wavelength_m")
        return self


class HeadConfig(StrictModel):
    """The regression head after fusion."""

    hidden: list[int] = Field([128], description="Hidden widths of the MLP (ReLU after each); [] for a linear head.")
    n_targets: int = Field(1, ge=1, description="Number of predicted soil properties.")
    uncertainty: bool = Field(False, description="Also predict a log-variance per target (Gaussian NLL training).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before each hidden layer.")


class ModelConfig(StrictModel):
    """A supervised model: optional image and climate branches, late fusion, regression head."""

    image: ImageEncoderConfig | None = Field(None, description="Image branch; None: climate only.")
    climate: ClimateEncoderConfig | None = Field(None, description="Climate branch; None: image only.")
    branch_dim: int | None = Field(
        128,
        ge=1,
        description="Each branch is projected to this width (Linear+ReLU) before concatenation; "
        "None feeds encoder features to the head directly (Tresson head).",
    )
    head: HeadConfig = Field(default_factory=HeadConfig, description="Regression head.")
    inr: InrConfig | None = Field(
        None,
        description="Predict at continuous points through an INR over the image encoder's stages (MISO); "
        "None: pooled window features.",
    )
    location: LocationConfig | None = Field(
        None, description="Location encoder for the geo-contrastive terms (needs inr); None: none."
    )

    @model_validator(mode="after")
    def _some_branch(self) -> ModelConfig:
        if self.image is None and self.climate is None:
            raise ValueError("model needs at least one of 'image' or 'climate'")
        if self.inr is not None and self.image is None:
            raise ValueError("model.inr needs model.image (it queries the image encoder's stages)")
        if self.location is not None and self.inr is None:
            raise ValueError("model.location needs model.inr (locations of query points)")
        return self
