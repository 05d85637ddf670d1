"""What the map job's driver needs to know of its model, read from the model's files without loading it.

The driver plans tiles, checks targets and decides from the model hash which tiles to recompute; only
the predictor actors load the weights. A `ModelCard` reads a bundle's ``meta.json`` and
``normalisation.json`` and hashes every file of the bundle folder (weights, recipe, statistics, meta and
any calibration files beside them), streamed in blocks, so a driver mapping a bundle never imports
torch and holds no weights, whatever the model's size. Loose checkpoint files (recipe + weights +
statistics) are described from the recipe, which does import torch.

`models:/<name>@<alias>` sources are looked up in the MLflow registry the driver resolves once
(`resolve_registry`) and downloaded to a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from soilnet import storage
from soilnet.data.normalisation import load_stats
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.reliability import calibrated_layers

log = logging.getLogger(__name__)

#: Block size of the streamed file hash.
HASH_BLOCK = 8 * 2**20
#: Bundle files the driver reads (`soilnet.recipes.bundle` writes them).
META_FILE, STATS_FILE = "meta.json", "normalisation.json"


@dataclass(frozen=True)
class ModelCard:
    """A model's inputs, outputs and content hash, without its weights; ``extra_layers``: its calibration's map
    layers (`soilnet.mapping.reliability`)."""

    bands: list[str]
    variables: list[str]
    patch: int
    months: int
    targets: list[str] | None
    content_hash: str
    extra_layers: tuple[str, ...] = ()
    #: Vocabulary (labels of codes 0..K-1) of each categorical target: its class layers (`soilnet.mapping.classes`).
    classes: dict[str, list[str]] = field(default_factory=dict)


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


def check_model_targets(model_targets: Sequence[str], targets: Sequence[str] | None, where: str) -> None:
    """Refuse a model whose targets are not the map's (a pH model mapped as SOC)."""
    if targets is not None and list(model_targets) != list(targets):
        raise ValueError(f"{where} predicts {list(model_targets)}, but map.targets is {list(targets)}")


def _files(url: str) -> Iterator[tuple[str, str]]:
    """(name relative to ``url``, URL) of every file under a folder, sorted by name."""
    loc = storage.resolve(url)
    root = loc.path.rstrip("/")
    for path in sorted(loc.fs.find(root)):
        yield path[len(root) :].lstrip("/"), storage.join(loc.url, path[len(root) :])


def hash_files(named: Sequence[tuple[str, str]]) -> str:
    """SHA-256 of (name, bytes) of files, streamed in `HASH_BLOCK` blocks."""
    digest = hashlib.sha256()
    for name, url in named:
        digest.update(name.encode() + b"\0")
        with storage.open_file(url) as f:
            while block := f.read(HASH_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def bundle_card(url: str, targets: Sequence[str] | None = None) -> ModelCard:
    """The card of a bundle folder; errors name the missing or invalid file."""
    url = storage.resolve(url).url
    meta_url = storage.join(url, META_FILE)
    if not storage.exists(meta_url):
        raise FileNotFoundError(f"{url} is not a model bundle: {META_FILE} is missing")
    with storage.open_file(meta_url, "r") as f:
        try:
            meta = json.load(f)
            model_targets, patch, months = list(meta["targets"]), int(meta["patch_px"]), int(meta["months"])
            classes = {str(t): [str(label) for label in labels] for t, labels in meta.get("classes", {}).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_url}: not valid bundle metadata: {exc!r}") from exc
    check_model_targets(model_targets, targets, f"model bundle {url}")
    stats = load_stats(storage.join(url, STATS_FILE))
    content_hash = hash_files(list(_files(url)))
    extra = tuple(calibrated_layers(url))
    return ModelCard(
        list(stats.bands), list(stats.variables), patch, months, model_targets, content_hash, extra, classes
    )


def checkpoint_card(source: ModelSourceConfig) -> ModelCard:
    """The card of loose checkpoint files (recipe YAML, one weights file per fold, statistics)."""
    from soilnet.recipes.recipe import load_recipe  # builds models, so imports torch

    recipe = load_recipe(source.recipe)  # type: ignore[arg-type]
    stats = load_stats(source.normalisation)  # type: ignore[arg-type]
    named = [("recipe", str(source.recipe)), ("normalisation", str(source.normalisation))]
    named += [(f"weights_{i}", str(url)) for i, url in enumerate(source.weights)]
    return ModelCard(
        list(stats.bands), list(stats.variables), recipe.data.patch_px, recipe.data.n_months, None, hash_files(named)
    )


def read_model_card(source: ModelSourceConfig, targets: Sequence[str] | None = None) -> ModelCard:
    """The card of a model source; with `targets`, a bundle must predict exactly those (``map.targets``)."""
    if source.bundle is None:
        return checkpoint_card(source)
    if source.bundle.startswith("models:/"):
        with tempfile.TemporaryDirectory(prefix="soilnet-model-") as folder:
            return bundle_card(download_registered(source.bundle, folder, source.registry), targets)
    return bundle_card(source.bundle, targets)
