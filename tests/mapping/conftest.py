"""Fixtures of the mapping tests: the tiny two-fold ensemble (`tests.fixtures.tiny_models`) on disk, map configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from soilnet.data.normalisation import save_stats
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.models.checkpoint import save_weights
from soilnet.recipes.bundle import ModelBundle
from tests.fixtures.tiny_models import tiny_bundle, tiny_models, tiny_recipe_dict, tiny_stats


def write_tiny_model(folder: Path, folds: int = 2) -> ModelSourceConfig:
    """A checkpoint source: the recipe, ``folds`` weight files and normalisation statistics under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(tiny_recipe_dict()))
    weights = []
    for k, model in enumerate(tiny_models(folds)):
        save_weights(model, str(folder / f"fold_{k}.safetensors"))
        weights.append(str(folder / f"fold_{k}.safetensors"))
    save_stats(tiny_stats(), str(folder / "normalisation.json"))
    return ModelSourceConfig(
        recipe=str(folder / "recipe.yaml"), weights=weights, normalisation=str(folder / "normalisation.json")
    )


@pytest.fixture(scope="session")
def reference_bundle() -> ModelBundle:
    """The tiny ensemble as the training side's `ModelBundle` (reference predictions)."""
    return tiny_bundle()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> ModelSourceConfig:
    """The tiny ensemble as loose checkpoint files."""
    return write_tiny_model(tmp_path_factory.mktemp("checkpoint"))


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
