"""A model bundle: the fold models of a cross-validated recipe, saved together as one ensemble.

A bundle is a folder at a URL (local path or ``s3://``) holding

- ``recipe.yaml``: the `RecipeConfig` that builds each model;
- ``fold_<k>.safetensors``: the weights of the model trained with fold ``k`` held out;
- ``intervals.json`` and ``aoa.npz`` (when the meta names them): the conformal quantiles of each continuous
  target and the area-of-applicability reference, calibrated on the folds (`soilnet.training.reliability`);
- ``normalisation.json``: the `NormStats` the models' inputs were normalised with (shared by all
  fold models; the target mean/std of each fold model, from its own training rows, are in the meta);
- ``meta.json``: `BundleMeta` (targets and units, their kinds and class vocabularies, band names,
  climate variables, patch size, months, cross-validated metrics, MLflow run id).

`ModelBundle.predict` takes decoded inputs (physical units, NaN for nodata), normalises them like
the training batches, runs every fold model and returns the ensemble mean and spread in target units
(continuous outputs). `ModelBundle.predict_outputs` returns every output of a multi-target bundle
(contract C1): mean and std of each continuous output, the fold-mean class probabilities of each
categorical one (`ensemble_outputs`, what the map job needs). The head's columns follow
``meta.targets``: one per continuous output, ``len(classes)`` logits per categorical output.
Bundles written before kinds existed load as all-continuous.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import yaml
from pydantic import BaseModel, Field, ValidationError
from torch import nn

from soilnet import storage
from soilnet.data.normalisation import NormStats, load_stats, normalise_batch, save_stats
from soilnet.data.targets import TargetKind, TargetOutput, head_slices, head_width
from soilnet.models.checkpoint import load_weights, save_weights
from soilnet.recipes.recipe import RecipeConfig, load_recipe

log = logging.getLogger(__name__)

RECIPE_FILE = "recipe.yaml"
STATS_FILE = "normalisation.json"
META_FILE = "meta.json"
FOLD_PATTERN = re.compile(r"^fold_(\d+)\.safetensors$")
INTERVALS_FILE = "intervals.json"
AOA_FILE = "aoa.npz"

#: (shift, scale) of one fold model: one float each (one output), or one per head column (several outputs).
Scaling = tuple[float | list[float], float | list[float]]


class BundleMeta(BaseModel):
    """What a bundle predicts and from which inputs; written as ``meta.json``."""

    targets: list[str] = Field(
        min_length=1, description="Output names in head order, e.g. ['soc_g_kg'] or ['soc_g_kg_0_20cm', ...]."
    )
    units: list[str] = Field(description="Unit of each target ('' for categorical ones).")
    kinds: list[TargetKind] = Field(
        default_factory=list,
        description="Kind of each target (continuous, binary, multiclass); empty: every target continuous.",
    )
    classes: dict[str, list[str]] = Field(
        default_factory=dict, description="Class vocabulary (code = index) of each categorical target."
    )
    bands: list[str] = Field(min_length=1, description="Image band names in channel order.")
    climate_variables: list[str] = Field(description="Climate variable names in order.")
    patch_px: int = Field(ge=1, description="Image window side in pixels.")
    months: int = Field(ge=1, description="Climate months per series.")
    mask_channel: bool = Field(False, description="A validity channel is appended to normalised images.")
    target_standardised: bool = Field(True, description="Models predict (target - mean) / std of the training targets.")
    folds: list[int] = Field(default_factory=list, description="Held-out fold of each model, in order.")
    target_scaling: list[Scaling] = Field(
        default_factory=list,
        description="(mean, std) of the standardised target of each fold model, in order, one float each or, "
        "with several outputs, one per head column (categorical logits: 0, 1); "
        "empty: the statistics' target_mean / target_std for every model.",
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Cross-validated metrics (mean, std).")
    mlflow_run_id: str | None = Field(None, description="MLflow run that produced the bundle.")
    intervals: str | None = Field(
        None, description="File of the per-target conformal quantiles in the bundle folder; None: no intervals."
    )
    aoa: str | None = Field(
        None, description="File of the area-of-applicability reference in the bundle folder; None: no AOA."
    )

    def outputs(self) -> list[TargetOutput]:
        """The head's outputs in order, with kinds and class vocabularies (old bundles: all continuous)."""
        kinds = self.kinds or ["continuous"] * len(self.targets)
        if len(kinds) != len(self.targets):
            raise ValueError(f"bundle meta lists {len(kinds)} kinds for {len(self.targets)} targets")
        return [
            TargetOutput(name, name, kind, classes=tuple(self.classes.get(name, ())))
            for name, kind in zip(self.targets, kinds, strict=True)
        ]


def column_scaling(scaling: Scaling, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(shift, scale) of a fold model as float64 tensors broadcasting over its head columns."""
    shift, scale = (torch.as_tensor(v, dtype=torch.float64) for v in scaling)
    if shift.ndim and shift.shape[0] != width:
        raise ValueError(f"target scaling has {shift.shape[0]} columns, the head {width}")
    return shift, scale


def ensemble_outputs(
    outs: Sequence[dict[str, torch.Tensor]], scaling: Sequence[Scaling], outputs: Sequence[TargetOutput]
) -> dict[str, dict[str, torch.Tensor]]:
    """Per output, the fold ensemble of raw head outputs (each ``prediction`` (B, W), maybe ``log_var``).

    Continuous output: ``mean`` and ``std`` (B,) in target units: the spread across folds plus, for
    heads that predict it, the mean aleatoric variance. Categorical output: ``probabilities`` (B, C),
    the mean over folds of each model's softmax.
    """
    width = head_width(outputs)
    means, variances = [], []
    for out, fold_scaling in zip(outs, scaling, strict=True):
        shift, scale = column_scaling(fold_scaling, width)
        means.append(out["prediction"].double() * scale + shift)
        if "log_var" in out:
            variances.append(out["log_var"].double().exp() * scale**2)
    stacked = torch.stack(means)
    result = {}
    for output, columns in zip(outputs, head_slices(outputs), strict=True):
        if output.categorical:
            result[output.name] = {"probabilities": torch.softmax(stacked[..., columns], dim=-1).mean(dim=0)}
            continue
        values = stacked[..., columns.start]
        variance = values.var(dim=0, unbiased=False)
        if variances:
            variance = variance + torch.stack(variances)[..., columns.start].mean(dim=0)
        result[output.name] = {"mean": values.mean(dim=0), "std": variance.sqrt()}
    return result


@dataclass
class ModelBundle:
    """Fold models (eval mode), their normalisation statistics, recipe and metadata."""

    models: list[nn.Module]
    stats: NormStats
    recipe: RecipeConfig
    meta: BundleMeta

    @torch.no_grad()
    def predict_normalised(
        self, image: torch.Tensor, climate: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble mean and std (B, n_targets) in target units from normalised inputs."""
        if any(o.categorical for o in self.meta.outputs()):
            raise ValueError(f"bundle targets {self.meta.targets} include class outputs: use predict_outputs")
        means, variances = [], []
        width = head_width(self.meta.outputs())
        for model, fold_scaling in zip(self.models, self.target_scaling(), strict=True):
            shift, scale = (v.float() for v in column_scaling(fold_scaling, width))
            out = model(image, climate)
            means.append(out["prediction"].float() * scale + shift)
            if "log_var" in out:
                variances.append(torch.exp(out["log_var"].float()) * scale**2)
        stacked = torch.stack(means)
        mean = stacked.mean(dim=0)
        variance = stacked.var(dim=0, unbiased=False)
        if variances:
            variance = variance + torch.stack(variances).mean(dim=0)
        return mean, variance.sqrt()

    def target_scaling(self) -> list[Scaling]:
        """(mean, std) that turn each model's output into target units."""
        if not self.meta.target_standardised:
            return [(0.0, 1.0)] * len(self.models)
        if self.meta.target_scaling:
            return list(self.meta.target_scaling)
        return [(self.stats.target_mean, self.stats.target_std)] * len(self.models)

    def predict(self, image: np.ndarray, climate: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and std (B, n_targets) from decoded image (B, C, P, P) and climate (B, T, V)."""
        image, climate = self._normalised(image, climate)
        mean, std = self.predict_normalised(image, climate)
        return mean.numpy(), std.numpy()

    @torch.no_grad()
    def predict_outputs(self, image: np.ndarray, climate: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
        """Every output of decoded inputs (`ensemble_outputs`): mean / std, or class probabilities."""
        image_t, climate_t = self._normalised(image, climate)
        outs = [model(image_t, climate_t) for model in self.models]
        combined = ensemble_outputs(outs, self.target_scaling(), self.meta.outputs())
        return {name: {k: v.float().numpy() for k, v in parts.items()} for name, parts in combined.items()}

    def _normalised(self, image: np.ndarray, climate: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked, normalised model inputs of decoded image (B, C, P, P) and climate (B, T, V)."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 4 or image.shape[1] != len(self.meta.bands):
            raise ValueError(
                f"image must be (B, {len(self.meta.bands)}, P, P) for bands {self.meta.bands}, got {image.shape}"
            )
        if climate is None:
            climate = np.zeros((image.shape[0], self.meta.months, len(self.meta.climate_variables)), np.float32)
        climate = np.asarray(climate, dtype=np.float32)
        if climate.ndim != 3 or climate.shape[2] != len(self.meta.climate_variables):
            raise ValueError(
                f"climate must be (B, T, {len(self.meta.climate_variables)}) for variables "
                f"{self.meta.climate_variables}, got {climate.shape}"
            )
        batch = normalise_batch({"image": image, "climate": climate}, self.stats, self.meta.mask_channel)
        return torch.from_numpy(batch["image"]), torch.from_numpy(batch["climate"])


def save_bundle(
    url: str,
    recipe: RecipeConfig,
    models: Sequence[nn.Module],
    stats: NormStats,
    meta: BundleMeta,
) -> str:
    """Write a bundle folder at `url` (one ``fold_<k>.safetensors`` per model); returns its URL."""
    if not models:
        raise ValueError("a bundle needs at least one model")
    folds = meta.folds or list(range(len(models)))
    if len(folds) != len(models):
        raise ValueError(f"meta.folds lists {len(folds)} folds for {len(models)} models")
    if meta.target_scaling and len(meta.target_scaling) != len(models):
        raise ValueError(f"meta.target_scaling has {len(meta.target_scaling)} entries for {len(models)} models")
    categorical = [o.name for o in meta.outputs() if o.categorical and len(o.classes) < 2]
    if categorical:
        raise ValueError(f"meta.classes lacks the vocabulary of categorical targets {categorical}")
    storage.makedirs(url)
    with storage.open_file(storage.join(url, RECIPE_FILE), "w") as f:
        yaml.safe_dump(recipe.model_dump(mode="json"), f, sort_keys=False)
    for fold, model in zip(folds, models, strict=True):
        save_weights(model, storage.join(url, f"fold_{fold}.safetensors"))
    save_stats(stats, storage.join(url, STATS_FILE))
    with storage.open_file(storage.join(url, META_FILE), "w") as f:
        f.write(meta.model_copy(update={"folds": folds}).model_dump_json(indent=2))
    log.info("saved a bundle of %d fold models to %s", len(models), url)
    return url


def _read_meta(url: str) -> BundleMeta:
    where = storage.join(url, META_FILE)
    with storage.open_file(where, "r") as f:
        try:
            return BundleMeta.model_validate(json.load(f))
        except (ValueError, ValidationError) as exc:
            raise ValueError(f"{where}: not valid bundle metadata: {exc}") from exc


def fold_files(url: str) -> dict[int, str]:
    """The fold weight files of a bundle by fold id."""
    loc = storage.resolve(url)
    names = [os.path.basename(p.rstrip("/")) for p in loc.fs.ls(loc.path, detail=False)]
    found = {int(m.group(1)): storage.join(url, name) for name in names if (m := FOLD_PATTERN.match(name))}
    return dict(sorted(found.items()))


def load_bundle(url: str) -> ModelBundle:
    """Read a bundle written by `save_bundle`; errors name the missing or invalid file."""
    url = storage.resolve(url).url
    for name in (RECIPE_FILE, STATS_FILE, META_FILE):
        if not storage.exists(storage.join(url, name)):
            raise FileNotFoundError(f"{url} is not a model bundle: {name} is missing")
    recipe = load_recipe(storage.join(url, RECIPE_FILE))
    stats = load_stats(storage.join(url, STATS_FILE))
    meta = _read_meta(url)
    files = fold_files(url)
    missing = [k for k in meta.folds if k not in files]
    if missing or not files:
        raise FileNotFoundError(f"{url}: fold weights {missing or meta.folds} listed in {META_FILE} are missing")
    models = []
    for fold in meta.folds:
        model = recipe.build_model()
        load_weights(model, files[fold])
        models.append(model.eval())
    log.info("loaded bundle %s: %d fold models, targets %s", url, len(models), meta.targets)
    return ModelBundle(models, stats, recipe, meta)
