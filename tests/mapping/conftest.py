"""Fixtures of the mapping tests: a tiny two-fold ensemble on disk and map configs over the tiny demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from soilnet.data.normalisation import NormStats, save_stats
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.models.bundle import BundleMeta, ModelBundle, save_bundle
from soilnet.models.checkpoint import save_weights
from soilnet.models.recipe import RecipeConfig

BANDS = ["SR_B4", "SR_B5", "ndvi", "elevation", "slope"]
VARIABLES = ["pr", "tmmn", "tmmx"]
RECIPE = {
    "name": "map-tiny",
    "data": {"n_bands": 5, "patch_px": 32, "n_climate_vars": 3, "n_months": 12},
    "model": {
        "image": {
            "arch": "vit",
            "timm_name": "vit_tiny_patch16_224",
            "img_size": 32,
            "patch_size": 8,
            "embed_dim": 16,
            "depth": 1,
            "num_heads": 2,
        },
        "climate": {"kind": "gru", "hidden_size": 8, "num_layers": 1, "pooling": "mean", "dropout": 0.0},
        "branch_dim": 8,
        "head": {"hidden": [8], "n_targets": 1, "uncertainty": True},
    },
}


def tiny_stats() -> NormStats:
    """Normalisation statistics of the tiny model's bands and variables."""
    return NormStats(
        image_method="minmax",
        bands=BANDS,
        image_center=[0.0, 0.0, -1.0, 0.0, 0.0],
        image_scale=[0.3, 0.5, 2.0, 800.0, 30.0],
        variables=VARIABLES,
        climate_mean=[60.0, 5.0, 15.0],
        climate_std=[30.0, 8.0, 8.0],
        target_mean=25.0,
        target_std=10.0,
        n_rows=100,
    )


def tiny_models(folds: int = 2) -> list[torch.nn.Module]:
    """``folds`` seeded tiny models of `RECIPE`."""
    recipe = RecipeConfig.model_validate(RECIPE)
    models = []
    for k in range(folds):
        torch.manual_seed(k)
        models.append(recipe.build_model().eval())
    return models


def write_tiny_model(folder: Path, folds: int = 2) -> ModelSourceConfig:
    """A checkpoint source: the recipe, ``folds`` weight files and normalisation statistics under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    weights = []
    for k, model in enumerate(tiny_models(folds)):
        save_weights(model, str(folder / f"fold_{k}.safetensors"))
        weights.append(str(folder / f"fold_{k}.safetensors"))
    save_stats(tiny_stats(), str(folder / "normalisation.json"))
    return ModelSourceConfig(
        recipe=str(folder / "recipe.yaml"), weights=weights, normalisation=str(folder / "normalisation.json")
    )


def tiny_bundle(folds: int = 2) -> ModelBundle:
    """The tiny ensemble as a `ModelBundle` (the training side's own prediction code)."""
    meta = BundleMeta(
        targets=["soc_g_kg"], units=["g/kg"], bands=BANDS, climate_variables=VARIABLES, patch_px=32, months=12
    )
    return ModelBundle(tiny_models(folds), tiny_stats(), RecipeConfig.model_validate(RECIPE), meta)


@pytest.fixture(scope="session")
def reference_bundle() -> ModelBundle:
    """The tiny ensemble as the training side's `ModelBundle` (reference predictions)."""
    return tiny_bundle()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> ModelSourceConfig:
    """The tiny ensemble as loose checkpoint files."""
    return write_tiny_model(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def tiny_bundle_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny ensemble saved as a model bundle folder."""
    bundle = tiny_bundle()
    url = str(tmp_path_factory.mktemp("bundle") / "tiny")
    return save_bundle(url, bundle.recipe, bundle.models, bundle.stats, bundle.meta)


@pytest.fixture(scope="session")
def tiny_model(tiny_bundle_url: str) -> ModelSourceConfig:
    """The tiny two-fold ensemble as a bundle source."""
    return ModelSourceConfig(bundle=tiny_bundle_url)


@pytest.fixture
def map_config(tiny_demo, tiny_model: ModelSourceConfig, tmp_path: Path) -> Callable[..., MapConfig]:
    """A factory of map configs over the tiny demo (240 m, 8 px tiles: 16 tiles) with overrides."""

    def make(**overrides) -> MapConfig:
        fields = {
            "raster": tiny_demo.raster,
            "climate": tiny_demo.climate,
            "region": tiny_demo.region,
            "out": str(tmp_path / "map"),
            "model": tiny_model,
            "climate_end": "2018-06",
            "resolution_m": 240,
            "tile_px": 8,
            "chunk_px": 8,
            "batch_size": 64,
            "executor": "local",
            "cpus_per_actor": 0.5,
        }
        return MapConfig(**{**fields, **overrides})

    return make
