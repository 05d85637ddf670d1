"""A tiny seeded ViT + GRU ensemble over the demo region's bands, for map tests, benchmarks and soaks.

Untrained (seeded weights, fixed normalisation statistics), so it builds in milliseconds and predicts
the same numbers on every machine: what a test of the map job's plumbing or a memory soak needs, where
the model's skill does not matter. ``width`` sets the embedding size (and half of it every other layer).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from soilnet.data.normalisation import NormStats
from soilnet.models.bundle import BundleMeta, ModelBundle, save_bundle
from soilnet.models.recipe import RecipeConfig

#: Demo region bands and climate variables the tiny model reads.
TINY_BANDS = ["SR_B4", "SR_B5", "ndvi", "elevation", "slope"]
TINY_VARIABLES = ["pr", "tmmn", "tmmx"]
TINY_PATCH_PX = 32
TINY_MONTHS = 12


def tiny_recipe_dict(width: int = 16, depth: int = 1) -> dict[str, Any]:
    """The recipe of the tiny model as a plain dict (what ``recipe.yaml`` holds)."""
    half = max(1, width // 2)
    return {
        "name": "map-tiny",
        "data": {"n_bands": len(TINY_BANDS), "patch_px": TINY_PATCH_PX, "n_climate_vars": 3, "n_months": TINY_MONTHS},
        "model": {
            "image": {
                "arch": "vit",
                "timm_name": "vit_tiny_patch16_224",
                "img_size": TINY_PATCH_PX,
                "patch_size": 8,
                "embed_dim": width,
                "depth": depth,
                "num_heads": 2,
            },
            "climate": {"kind": "gru", "hidden_size": half, "num_layers": 1, "pooling": "mean", "dropout": 0.0},
            "branch_dim": half,
            "head": {"hidden": [half], "n_targets": 1, "uncertainty": True},
        },
    }


def tiny_stats() -> NormStats:
    """Fixed normalisation statistics of the tiny model's bands and variables."""
    return NormStats(
        image_method="minmax",
        bands=TINY_BANDS,
        image_center=[0.0, 0.0, -1.0, 0.0, 0.0],
        image_scale=[0.3, 0.5, 2.0, 800.0, 30.0],
        variables=TINY_VARIABLES,
        climate_mean=[60.0, 5.0, 15.0],
        climate_std=[30.0, 8.0, 8.0],
        target_mean=25.0,
        target_std=10.0,
        n_rows=100,
    )


def tiny_models(folds: int = 2, width: int = 16, depth: int = 1) -> list[nn.Module]:
    """``folds`` tiny models in eval mode, fold ``k`` seeded with ``k``."""
    recipe = RecipeConfig.model_validate(tiny_recipe_dict(width, depth))
    models = []
    for k in range(folds):
        torch.manual_seed(k)
        models.append(recipe.build_model().eval())
    return models


def tiny_bundle(folds: int = 2, width: int = 16, depth: int = 1) -> ModelBundle:
    """The tiny ensemble as a `ModelBundle` (SOC in g/kg)."""
    meta = BundleMeta(
        targets=["soc_g_kg"],
        units=["g/kg"],
        bands=TINY_BANDS,
        climate_variables=TINY_VARIABLES,
        patch_px=TINY_PATCH_PX,
        months=TINY_MONTHS,
    )
    recipe = RecipeConfig.model_validate(tiny_recipe_dict(width, depth))
    return ModelBundle(tiny_models(folds, width, depth), tiny_stats(), recipe, meta)


def save_tiny_bundle(url: str, folds: int = 2, width: int = 16, depth: int = 1) -> str:
    """Save the tiny ensemble as a bundle folder at ``url`` (local or s3://); returns the URL."""
    bundle = tiny_bundle(folds, width, depth)
    return save_bundle(url, bundle.recipe, bundle.models, bundle.stats, bundle.meta)
