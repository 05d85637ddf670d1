"""Loading the map's model: loose checkpoint files, a model bundle folder, or an MLflow registry alias."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

import torch

from soilnet import storage
from soilnet.data.normalisation import load_stats
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.ensemble import Ensemble
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
    """An ensemble from a model bundle folder (recipe, fold weights, normalisation, meta) predicting `targets`."""
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
    )


def registry_of(cfg: MapConfig) -> str:
    """The tracking URI holding the map's ``models:/`` alias (see `ModelSourceConfig.registry`)."""
    uri = cfg.model.registry or cfg.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    workspace = storage.resolve(cfg.raster).url.rstrip("/").rsplit("/", 1)[0]
    database = storage.join(workspace, "mlruns.db")
    if not storage.is_remote(workspace) and storage.exists(database):
        return f"sqlite:///{storage.resolve(database).path}"
    raise ValueError(
        f"map.model.bundle {cfg.model.bundle}: no MLflow registry to look it up in; set map.model.registry, "
        f"map.mlflow_tracking_uri or $MLFLOW_TRACKING_URI (there is no {database})"
    )


def resolve_registry(cfg: MapConfig) -> MapConfig:
    """``cfg`` with the registry of a ``models:/`` bundle filled in (the driver resolves it once for every actor)."""
    if not (cfg.model.bundle or "").startswith("models:/") or cfg.model.registry:
        return cfg
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"registry": registry_of(cfg)})})


def download_registered(alias_uri: str, folder: str, registry: str | None = None) -> str:
    """Download a registered model version (``models:/<name>@<alias>``) into ``folder``; returns its bundle folder.

    A missing model or alias fails with one line naming the registry and what it holds.
    """
    import mlflow.artifacts
    from mlflow import MlflowClient

    from soilnet.tracking.lookups import find_alias, parse_models_uri
    from soilnet.tracking.mlflow_model import bundle_in_model

    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    version = find_alias(client, *parse_models_uri(alias_uri))
    local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=folder, tracking_uri=registry)
    return str(bundle_in_model(local))


def check_targets(bundle: ModelBundle, targets: Sequence[str] | None, where: str) -> None:
    """Refuse a model whose targets are not the map's (a pH model mapped as SOC)."""
    if targets is not None and list(bundle.meta.targets) != list(targets):
        raise ValueError(f"{where} predicts {bundle.meta.targets}, but map.targets is {list(targets)}")


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
