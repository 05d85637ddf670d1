"""Fixtures for model tests: tiny recipes from jobs/configs/recipes, one CPU thread, fixed seed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from soilnet.models.recipe import RecipeConfig, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "recipes"


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    """Single-threaded, seeded torch for every test."""
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture
def recipe() -> Callable[[str], RecipeConfig]:
    """Load a recipe by name from jobs/configs/recipes."""
    return lambda name: load_recipe(RECIPES / f"{name}.yaml")


@pytest.fixture
def sample_batch() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """Random image (B, C, P, P) and climate (B, T, V) float32 batches of a recipe's shapes."""

    def make(recipe: RecipeConfig, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        d = recipe.data
        image = torch.rand(batch, d.n_bands, d.patch_px, d.patch_px)
        return image, torch.randn(batch, d.n_months, d.n_climate_vars)

    return make
