"""Recipes (soilnet, ssl-soilnet, dino and their ablations) as YAML files: shapes, model, SSL."""

from __future__ import annotations

import os

import yaml
from pydantic import Field, ValidationError, model_validator

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.models.config import ModelConfig
from soilnet.models.factory import build_model
from soilnet.models.fusion import SoilNetModel
from soilnet.recipes.optim import OptimConfig
from soilnet.ssl.config import SSLConfig


class DataShapes(StrictModel):
    """The sample shapes a recipe expects (DESIGN.md Sample contract)."""

    n_bands: int = Field(14, ge=1, description="Image bands C of image (B, C, P, P).")
    patch_px: int = Field(64, ge=8, description="Image patch side P in pixels.")
    n_climate_vars: int = Field(14, ge=1, description="Climate variables V of (B, T, V).")
    n_months: int = Field(61, ge=1, description="Climate months T of (B, T, V).")


class RecipeConfig(StrictModel):
    """A named recipe: data shapes, the supervised model and an optional SSL pretraining stage."""

    name: str = Field(..., min_length=1, description="Recipe name, e.g. 'ssl-soilnet'.")
    description: str = Field("", description="What the recipe is (and which ablation).")
    data: DataShapes = Field(default_factory=DataShapes, description="Expected sample shapes.")
    model: ModelConfig = Field(..., description="The fine-tuned / supervised model.")
    ssl: SSLConfig | None = Field(None, description="Self-supervised pretraining; None: none.")
    pretrain_optim: OptimConfig | None = Field(
        None,
        description="The reference optimiser schedule of the pretraining (e.g. DINO's); the fields a job's "
        "pretrain.optim sets explicitly win. None: the job's pretrain.optim.",
    )

    @model_validator(mode="after")
    def _patch_fits_model(self) -> RecipeConfig:
        image = self.model.image
        if image is not None and image.img_size != self.data.patch_px:
            raise ValueError(f"model.image.img_size {image.img_size} differs from data.patch_px {self.data.patch_px}")
        return self

    def build_model(self) -> SoilNetModel:
        """The recipe's supervised model for its data shapes."""
        d = self.data
        return build_model(self.model, d.n_bands, d.n_climate_vars, d.n_months, window=d.patch_px)


def load_recipe(url: str | os.PathLike[str]) -> RecipeConfig:
    """Read and validate a recipe YAML from a local path or s3:// URL."""
    with storage.open_file(url, "rb") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, dict):
        raise ValueError(f"{os.fspath(url)}: a recipe must be a YAML mapping")
    try:
        return RecipeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{os.fspath(url)}: invalid recipe\n{exc}") from exc
