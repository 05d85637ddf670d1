"""Several targets in one fine-tuning run (contract C1): per-fold scaling, masked loss, per-output predictions.

A multi-output run trains one head over every output of `soilnet.data.targets.plan_outputs`
(continuous columns, class logits) on a location table whose labels are a matrix (N, K) with NaN
where a site was not labelled for an output (`soilnet.data.locations.labelled_outputs`).

- Scaling (`output_stats`): each continuous output is standardised with the mean / std of the
  fold's training rows that carry its label; class codes are left as they are (mean 0, std 1).
- Class weights: each categorical output's cross-entropy weighs class c by
  ``n / (n_present_classes * n_c)`` over the fold's labelled training rows (scikit-learn's
  ``compute_class_weight("balanced")``; a class absent from the training rows weighs 0), or 1
  with ``finetune.class_weighting: none``.
- Loss (`MultiTargetTask`): per output, the mean over the batch's labelled rows (weighted by
  ``valid`` and the class weights) of MSE / Huber / L1 on the standardised value, Gaussian NLL for a
  variance head, or cross-entropy; the outputs' terms are summed with their configured weights.
  The validation loss is the mean over rows of each row's weighted sum of terms.
- Predictions (`output_predictions`): per output, values in target units (continuous) or class
  probabilities (categorical), through `soilnet.recipes.bundle.ensemble_outputs`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from soilnet.data.locations import has_labels, label_matrix, labelled_locations, labelled_outputs, shallowest_rows
from soilnet.data.normalisation import NormStats
from soilnet.data.points import class_vocabulary, read_points, validate_points
from soilnet.data.targets import TargetOutput, head_slices, head_width, plan_outputs
from soilnet.data.workspace import DataConfig
from soilnet.evaluation.classification import classification_metrics, per_fold_classification
from soilnet.evaluation.metrics import CLASSIFICATION_METRIC_NAMES, METRIC_NAMES, per_fold_metrics, regression_metrics
from soilnet.recipes.bundle import Scaling, ensemble_outputs
from soilnet.recipes.recipe import RecipeConfig
from soilnet.training.config import FinetuneConfig
from soilnet.training.job import with_target_stats
from soilnet.training.tasks import RegressionTask

log = logging.getLogger(__name__)


def is_single(outputs: Sequence[TargetOutput]) -> bool:
    """One continuous output: the one-target path (scalar labels and scaling, as before C1)."""
    return len(outputs) == 1 and not outputs[0].categorical


def labelled_for(data: DataConfig, cfg: FinetuneConfig) -> tuple[pd.DataFrame, list[TargetOutput]]:
    """The labelled location table of a fine-tuning run and its outputs, primary first.

    Rows are those of ``finetune.depths`` (None: the shallowest interval of the table). One
    continuous output keeps the one-target table (every row labelled); several outputs get a label
    matrix with NaN where a site lacks a label.
    """
    url = data.url("points")
    points, _ = read_points(url)
    outputs = plan_outputs(cfg.target_specs, cfg.depths, class_vocabulary(points))
    validate_points(points, url, [s.name for s in cfg.target_specs], allow_missing=not is_single(outputs))
    if cfg.depths is None:
        points = shallowest_rows(points)
    else:
        interval = list(zip(points["depth_top_cm"], points["depth_bottom_cm"], strict=True))
        points = points[[pair in set(cfg.depths) for pair in interval]]
        if points.empty:
            raise ValueError(f"{url}: no row at finetune.depths {cfg.depths} (depth_top_cm / depth_bottom_cm)")
    if is_single(outputs):
        return labelled_locations(points, cfg.target, cfg.folds, cfg.spectral_label_weight), outputs
    unlabelled = [o.name for o in outputs if not has_labels(points, o)]
    if unlabelled:
        log.warning("outputs %s have no label at their depth (site properties?): not trained", unlabelled)
        outputs = [o for o in outputs if o.name not in unlabelled]
    if not outputs or outputs[0].column != cfg.target:
        raise ValueError(f"{url}: the primary target {cfg.target!r} has no label at finetune.depths {cfg.depths}")
    return labelled_outputs(points, outputs, cfg.folds, cfg.spectral_label_weight), outputs


def fold_target_stats(
    stats: NormStats, train: pd.DataFrame, outputs: Sequence[TargetOutput], weighting: Literal["balanced", "none"]
) -> NormStats:
    """`stats` with the target scaling (and class weights) of a fold's training rows."""
    if is_single(outputs):
        return with_target_stats(stats, train["target"].to_numpy())
    return output_stats(stats, label_matrix(train), outputs, weighting)


def balanced_class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (n_present * count)`` per class over the labelled `codes` (NaN ignored); 0 for absent classes."""
    codes = np.asarray(codes, dtype=np.float64)
    counts = np.bincount(codes[np.isfinite(codes)].astype(np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def output_stats(
    stats: NormStats,
    labels: np.ndarray,
    outputs: Sequence[TargetOutput],
    weighting: Literal["balanced", "none"] = "balanced",
) -> NormStats:
    """`stats` with per-output target mean / std and class weights of a fold's training labels (N, K)."""
    labels = np.asarray(labels, dtype=np.float64).reshape(len(labels), len(outputs))
    means, stds, weights = [], [], []
    for k, out in enumerate(outputs):
        values = labels[:, k][np.isfinite(labels[:, k])]
        if values.size == 0:
            raise ValueError(f"output {out.name!r} has no label among the fold's training rows")
        if out.categorical:
            means.append(0.0)
            stds.append(1.0)
            balanced = balanced_class_weights(values, out.width) if weighting == "balanced" else np.ones(out.width)
            weights.extend(balanced.tolist())
            continue
        means.append(float(values.mean()))
        stds.append(float(values.std()) if values.size > 1 and values.std() > 0 else 1.0)
    return stats.model_copy(
        update={"target_mean": means, "target_std": stds, "class_weights": weights if weights else None}
    )


def head_scaling(stats: NormStats, outputs: Sequence[TargetOutput]) -> Scaling:
    """(shift, scale) per head column of a fold model (logit columns 0, 1): the bundle's target_scaling entry."""
    shift: list[float] = []
    scale: list[float] = []
    for out, mean, std in zip(outputs, stats.target_mean, stats.target_std, strict=True):
        shift += [0.0] * out.width if out.categorical else [float(mean)]
        scale += [1.0] * out.width if out.categorical else [float(std)]
    return shift, scale


def with_head_width(recipe: RecipeConfig, outputs: Sequence[TargetOutput]) -> RecipeConfig:
    """The recipe with a head of one column per continuous output and one logit per class."""
    head = recipe.model.head.model_copy(update={"n_targets": head_width(outputs)})
    model = recipe.model.model_copy(update={"head": head})
    return RecipeConfig.model_validate(recipe.model_copy(update={"model": model}).model_dump())


def output_predictions(
    out: dict[str, torch.Tensor], stats: NormStats, outputs: Sequence[TargetOutput]
) -> dict[str, np.ndarray]:
    """One model's predictions per output: values (N,) in target units, or class probabilities (N, C)."""
    combined = ensemble_outputs([out], [head_scaling(stats, outputs)], outputs)
    return {
        name: (parts["probabilities"] if "probabilities" in parts else parts["mean"]).float().numpy()
        for name, parts in combined.items()
    }


def output_labels(table: pd.DataFrame, outputs: Sequence[TargetOutput]) -> dict[str, np.ndarray]:
    """The labels of each output (N,) of a location table: values or class codes, NaN where missing."""
    labels = label_matrix(table).reshape(len(table), -1).astype(np.float64)
    return {out.name: labels[:, k] for k, out in enumerate(outputs)}


def fold_test_metrics(
    labels: dict[str, np.ndarray], predicted: dict[str, np.ndarray], outputs: Sequence[TargetOutput]
) -> dict[str, float]:
    """A fold's test metrics per output on its labelled rows: ``<output>_<metric>`` (the primary's also bare)."""
    metrics = {}
    for k, out in enumerate(outputs):
        seen = np.isfinite(labels[out.name])
        if seen.sum() < (1 if out.categorical else 2):
            continue
        y, p = labels[out.name][seen], predicted[out.name][seen]
        scores = classification_metrics(y.astype(np.int64), p) if out.categorical else regression_metrics(y, p)
        metrics.update({f"{out.name}_{m}": v for m, v in scores.items()})
        if k == 0:
            metrics.update(scores)
    return metrics


def out_of_fold(
    folds: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]], n_rows: int, outputs: Sequence[TargetOutput]
) -> dict[str, np.ndarray]:
    """Each output's out-of-fold predictions over every row (values (N,), probabilities (N, C); NaN unscored)."""
    oof = {o.name: np.full((n_rows, o.width) if o.categorical else n_rows, np.nan) for o in outputs}
    for rows, predicted in folds:
        for name, values in predicted.items():
            oof[name][rows] = values
    return oof


def per_fold_outputs(
    labels: dict[str, np.ndarray],
    oof: dict[str, np.ndarray],
    fold_ids: np.ndarray,
    outputs: Sequence[TargetOutput],
    model: str,
) -> pd.DataFrame:
    """Per-fold metrics of every output (contract C3, ``target`` = the output's name), on labelled, scored rows."""
    frames = []
    for out in outputs:
        y, p = labels[out.name], oof[out.name]
        scored = np.isfinite(y) & np.isfinite(p).all(axis=1) if p.ndim == 2 else np.isfinite(y) & np.isfinite(p)
        if out.categorical:
            scores = per_fold_classification(y[scored].astype(np.int64), p[scored], fold_ids[scored], model, out.name,
                                             out.classes)  # fmt: skip
            frames.append(scores.per_fold)
        else:
            frames.append(per_fold_metrics(y[scored], p[scored], fold_ids[scored], model, out.name))
    return pd.concat(frames, ignore_index=True)


def primary_metric_names(outputs: Sequence[TargetOutput]) -> tuple[str, ...]:
    """The metrics the run's cv_<metric>_mean/std summarise: those of its primary output."""
    return CLASSIFICATION_METRIC_NAMES if outputs[0].categorical else METRIC_NAMES


class MultiTargetTask(RegressionTask):
    """Fine-tuning of several outputs: masked per-output losses, class-weighted cross-entropy."""

    def __init__(
        self,
        recipe: RecipeConfig,
        outputs: Sequence[TargetOutput],
        loss: Literal["mse", "huber", "l1"],
        huber_delta: float,
        pretrained: str | None,
        freeze_backbone: bool,
    ) -> None:
        self.outputs = list(outputs)
        self.slices = head_slices(self.outputs)
        super().__init__(with_head_width(recipe, outputs), loss, huber_delta, pretrained, freeze_backbone)

    def head_columns(self) -> int:
        """The head width this task trains: one column per continuous output, one logit per class."""
        return head_width(self.outputs)

    def terms(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per output: each sample's loss (B,) and its weight (B,): 0 where unlabelled, else 1 or its class weight."""
        prediction, target = out["prediction"].float(), batch["target"].float()
        class_weights = batch.get("class_weights")
        result, offset = [], 0
        for k, (output, columns) in enumerate(zip(self.outputs, self.slices, strict=True)):
            labelled = ~torch.isnan(target[:, k])
            value = torch.where(labelled, target[:, k], torch.zeros_like(target[:, k]))
            weight = labelled.float()
            if output.categorical:
                codes = value.long()
                loss = F.cross_entropy(prediction[:, columns], codes, reduction="none")
                if class_weights is not None:
                    weight = weight * class_weights[offset : offset + output.width][codes]
                offset += output.width
            else:
                column = slice(columns.start, columns.start + 1)
                single = {"prediction": prediction[:, column]}
                if "log_var" in out:
                    single["log_var"] = out["log_var"][:, column]
                loss = self.per_sample(single, value)
            result.append((loss, weight))
        return result

    def sample_losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each sample's weighted sum of its outputs' terms (B,) (the validation loss is their mean)."""
        terms = zip(self.outputs, self.terms(out, batch), strict=True)
        return sum(output.weight * loss * weight for output, (loss, weight) in terms)

    def supervised_loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over outputs of weight x the mean term over the batch's labelled rows (``valid`` and class weighted)."""
        valid = batch["valid"]
        total = torch.zeros((), device=valid.device)
        for output, (loss, weight) in zip(self.outputs, self.terms(out, batch), strict=True):
            w = weight * valid
            total = total + output.weight * (loss * w).sum() / w.sum().clamp_min(1e-8)
        return total
