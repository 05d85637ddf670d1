"""Loading the map's model: loose checkpoint files, a model bundle folder, or an MLflow registry alias."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence

import torch

from soilnet.data.normalisation import load_stats
from soilnet.mapping.config import ModelSourceConfig
from soilnet.mapping.ensemble import Ensemble
from soilnet.mapping.model_card import check_model_targets, download_registered
from soilnet.mapping.reliability import load_reliability
from soilnet.models.checkpoint import load_weights
from soilnet.recipes.bundle import ModelBundle, load_bundle
from soilnet.recipes.recipe import RecipeConfig, load_recipe

log = logging.getLogger(__name__)


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _mask_channel(recipe: RecipeConfig, n_bands: int, where: str) -> bool:
    """True when the recipe expects a validity channel after the bands; errors on any other mismatch."""
    if recipe.data.n_bands not in (n_bands, n_bands + 1):
        raise ValueError(
            f"{where}: recipe expects {recipe.data.n_bands} input channels, the statistics name {n_bands} bands"
        )
    return recipe.data.n_bands == n_bands + 1


def load_checkpoint_ensemble(source: ModelSourceConfig, device: str) -> Ensemble:
    """An ensemble from a recipe YAML, one weights file per fold and the normalisation JSON."""
    recipe = load_recipe(source.recipe)  # type: ignore[arg-type]
    stats = load_stats(source.normalisation)  # type: ignore[arg-type]
    models = []
    for url in source.weights:
        model = recipe.build_model()
        load_weights(model, url)
        models.append(model)
    log.info("loaded %d fold model(s) of recipe %s", len(models), recipe.name)
    return Ensemble(
        models,
        stats,
        patch=recipe.data.patch_px,
        months=recipe.data.n_months,
        mask_channel=_mask_channel(recipe, len(stats.bands), str(source.recipe)),
        device=device,
    )


def load_bundle_ensemble(url: str, device: str, targets: Sequence[str] | None = None) -> Ensemble:
    """An ensemble from a model bundle folder (recipe, fold weights, normalisation, meta, calibration)
    predicting `targets`."""
    bundle = load_bundle(url)
    check_targets(bundle, targets, f"model bundle {url}")
    return Ensemble(
        list(bundle.models),
        bundle.stats,
        patch=bundle.meta.patch_px,
        months=bundle.meta.months,
        mask_channel=bundle.meta.mask_channel,
        target_scaling=bundle.target_scaling(),
        device=device,
        reliability=load_reliability(url),
        outputs=bundle.meta.outputs(),
    )


def check_targets(bundle: ModelBundle, targets: Sequence[str] | None, where: str) -> None:
    """Refuse a model whose targets are not the map's (a pH model mapped as SOC)."""
    check_model_targets(bundle.meta.targets, targets, where)


def load_ensemble(
    source: ModelSourceConfig, device: str | None = None, targets: Sequence[str] | None = None
) -> Ensemble:
    """The ensemble named by a model source, on ``device`` (default: GPU when present).

    With `targets`, a bundle must predict exactly those (``map.targets``, in order).
    """
    device = device or default_device()
    if source.bundle is None:
        return load_checkpoint_ensemble(source, device)
    if source.bundle.startswith("models:/"):
        with tempfile.TemporaryDirectory(prefix="soilnet-model-") as folder:
            return load_bundle_ensemble(download_registered(source.bundle, folder, source.registry), device, targets)
    return load_bundle_ensemble(source.bundle, device, targets)
