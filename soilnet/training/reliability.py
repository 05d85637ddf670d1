"""Calibrating a cross-validated bundle: prediction intervals and area of applicability (#17).

Once the fold models have scored their test folds, every labelled row gets the bundle's ensemble
spread (the fold ensemble's std, the quantity the map job has at every pixel) and the first fold
model's fused embedding (what its head reads, `head_inputs`). Then

- per continuous target, the out-of-fold predictions, spreads and spatial folds give the conformal
  quantiles of every configured level (`soilnet.evaluation.conformal`) and the held-out coverage
  and width per fold;
- the embeddings, weighted by the head's sensitivity to each dimension (`linear_importance`), give the
  AOA reference with the cross-validated DI of the same folds (`soilnet.evaluation.aoa`).

`write_calibration` puts both into the bundle folder (``intervals.json``, ``aoa.npz``, named in its
meta), so the map job needs nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from soilnet import storage
from soilnet.evaluation.aoa import AOAReference, fit_aoa, linear_importance, save_aoa
from soilnet.evaluation.conformal import (
    IntervalCalibration,
    calibrate,
    coverage_by_aoa,
    held_out_table,
    level_name,
    reliability,
    save_calibrations,
)
from soilnet.evaluation.plots import di_histogram, reliability_diagram
from soilnet.models.fusion import head_inputs
from soilnet.recipes.bundle import AOA_FILE, INTERVALS_FILE, ModelBundle
from soilnet.training.config import CalibrationConfig
from soilnet.training.samples import SampleSource

log = logging.getLogger(__name__)


@dataclass
class BundleCalibration:
    """Conformal quantiles per calibrated continuous output (``targets``, the columns of ``y``, ``predictions`` and
    ``sigma``), the AOA reference, and what they give on held-out folds."""

    calibrations: dict[str, IntervalCalibration]
    aoa: AOAReference | None
    y: np.ndarray
    predictions: np.ndarray
    sigma: np.ndarray
    folds: np.ndarray
    targets: list[str]
    per_fold: pd.DataFrame
    summary: dict[str, float]

    def meta_fields(self) -> dict[str, str]:
        """The bundle meta fields naming the calibration files `write_calibration` writes."""
        fields = {"intervals": INTERVALS_FILE} if self.calibrations else {}
        return {**fields, **({"aoa": AOA_FILE} if self.aoa is not None else {})}

    def metrics(self) -> dict[str, float]:
        """The summary as MLflow metrics of the cross-validation run (``cv_coverage_90``, ...), finite values only."""
        return {f"cv_{k}": float(v) for k, v in self.summary.items() if np.isfinite(v)}

    def interval_line(self) -> str:
        """``INTERVALS: coverage_90=C width_90=W aoa_fraction=A (target: ...)`` of the primary target (the 90 %
        intervals, or those of the first configured level without them)."""
        levels = self.calibrations[self.targets[0]].levels
        level = 0.9 if 0.9 in levels else levels[0]
        pct = level_name(level)
        coverage, width = self.summary[f"coverage_{pct}"], self.summary[f"width_{pct}"]
        low, high = round(level - 0.02, 4), round(level + 0.02, 4)
        return (
            f"INTERVALS: coverage_{pct}={coverage:.3f} width_{pct}={width:.3f} "
            f"aoa_fraction={self.summary.get('aoa_fraction', float('nan')):.3f} "
            f"(target: {low:g} <= coverage_{pct} <= {high:g})"
        )


def head_input_weight(model: nn.Module) -> np.ndarray:
    """The weight matrix (out, in) of the first linear layer of a model's head."""
    first = next((m for m in model.head.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise ValueError("the model's head has no linear layer")
    return first.weight.detach().float().cpu().numpy()


def spread_and_embedding(
    bundle: ModelBundle, source: SampleSource, table: pd.DataFrame, names: list[str], batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble std (N, len(names)) of the bundle's continuous outputs `names` and the first fold model's head
    input (N, D) of each row."""
    spreads, embeddings = [], []
    for start in range(0, len(table), batch_size):
        raw = source.read(table.iloc[start : start + batch_size])
        with head_inputs(bundle.models[0]) as seen:
            parts = bundle.predict_outputs(raw["image"], raw["climate"])
        spreads.append(np.column_stack([parts[name]["std"] for name in names]))
        embeddings.append(torch.cat(seen).float().cpu().numpy())
    return np.concatenate(spreads), np.concatenate(embeddings)


def calibrate_bundle(
    bundle: ModelBundle,
    source: SampleSource,
    table: pd.DataFrame,
    labels: Mapping[str, np.ndarray],
    oof: Mapping[str, np.ndarray],
    cfg: CalibrationConfig,
) -> BundleCalibration:
    """Calibrate the intervals of the bundle's continuous outputs and the AOA on the folds of `table`.

    `labels` and `oof` hold each output's labels and out-of-fold predictions (N,) by name (NaN: no label,
    unscored); categorical outputs and outputs missing from them get no intervals. The summary (the first
    calibrated output): held-out ``coverage_<pct>`` and ``width_<pct>`` over all its points, and with the AOA
    its ``aoa_fraction`` (share of training points whose cross-validated DI is within the threshold) and the
    coverage inside and outside it.
    """
    names = [o.name for o in bundle.meta.outputs() if not o.categorical and o.name in labels and o.name in oof]
    y = np.column_stack([np.asarray(labels[n], np.float64) for n in names]) if names else np.empty((len(table), 0))
    predictions = np.column_stack([np.asarray(oof[n], np.float64) for n in names]) if names else y
    folds = table["fold"].to_numpy()
    scored_folds = np.unique(folds[np.isfinite(predictions).any(axis=1)])
    if scored_folds.size < 2:
        log.warning("folds %s scored: intervals and AOA need at least 2, the bundle gets none", scored_folds.tolist())
        return BundleCalibration({}, None, y, predictions, np.full_like(y, np.nan), folds, names, pd.DataFrame(), {})
    sigma, embedding = spread_and_embedding(bundle, source, table, names)
    calibrations, frames = {}, []
    for i, target in enumerate(names):
        rows = np.isfinite(y[:, i]) & np.isfinite(predictions[:, i])
        cal = calibrate(y[rows, i], predictions[rows, i], sigma[rows, i], folds[rows], cfg.levels)
        calibrations[target] = cal
        table = held_out_table(cal, y[rows, i], predictions[rows, i], sigma[rows, i], folds[rows])
        frames.append(table.assign(target=target)[["target", *table.columns]])
    per_fold = pd.concat(frames, ignore_index=True)
    primary = per_fold[per_fold["target"] == names[0]]
    summary = {
        f"{kind}_{level_name(level)}": float(np.average(primary[f"{kind}_{level_name(level)}"], weights=primary["n"]))
        for level in cfg.levels
        for kind in ("coverage", "width")
    }
    aoa = None
    if cfg.aoa:
        weights = linear_importance(head_input_weight(bundle.models[0]), embedding.std(axis=0))
        aoa = fit_aoa(embedding, folds, weights)
        inside = aoa.inside(aoa.train_di)
        summary["aoa_fraction"] = float(inside.mean())
        rows = np.isfinite(y[:, 0]) & np.isfinite(predictions[:, 0])
        args = (y[rows, 0], predictions[rows, 0], sigma[rows, 0], folds[rows], inside[rows])
        for level in cfg.levels:
            summary.update(coverage_by_aoa(calibrations[names[0]], *args, level))
    log.info("calibration of %s: %s", names[0], {k: round(v, 4) for k, v in summary.items()})
    return BundleCalibration(calibrations, aoa, y, predictions, sigma, folds, names, per_fold, summary)


def calibration_figures(calibration: BundleCalibration) -> dict[str, Figure]:
    """The reliability diagram of each calibrated target (the primary's ``reliability_diagram.png``, the others'
    ``<target>/reliability_diagram.png``) and the histogram of the training points' cross-validated DI."""
    figures = {}
    for i, target in enumerate(calibration.targets):
        if target not in calibration.calibrations:
            continue
        y, pred, sigma = calibration.y[:, i], calibration.predictions[:, i], calibration.sigma[:, i]
        rows = np.isfinite(y) & np.isfinite(pred)
        curve = reliability(y[rows], pred[rows], sigma[rows], calibration.folds[rows])
        name = "reliability_diagram.png" if i == 0 else f"{target}/reliability_diagram.png"
        figures[name] = reliability_diagram(curve["nominal"], curve["observed"], target)
    if calibration.aoa is not None:
        figures["di_histogram.png"] = di_histogram(calibration.aoa.train_di, calibration.aoa.threshold)
    return figures


def write_calibration(calibration: BundleCalibration, bundle_url: str) -> None:
    """Write the calibration files named by `BundleCalibration.meta_fields` into a bundle folder."""
    if calibration.calibrations:
        save_calibrations(calibration.calibrations, storage.join(bundle_url, INTERVALS_FILE))
    if calibration.aoa is not None:
        save_aoa(calibration.aoa, storage.join(bundle_url, AOA_FILE))


def with_intervals(per_fold: pd.DataFrame, calibration: BundleCalibration) -> pd.DataFrame:
    """The model's per-fold metrics with the held-out ``coverage_<pct>`` and ``width_<pct>`` of each target.

    Rows of a table whose target column is empty (one unnamed target) take the primary target's values.
    """
    if calibration.per_fold.empty:
        return per_fold
    intervals = calibration.per_fold.drop(columns="n")
    named = per_fold["target"].astype(str) if "target" in per_fold.columns else pd.Series("", index=per_fold.index)
    if (named == "").all():
        intervals = intervals[intervals["target"] == calibration.targets[0]].assign(target="")
    merged = per_fold.assign(target=named).merge(intervals, on=["target", "fold"], how="left")
    return merged if "target" in per_fold.columns else merged.drop(columns="target")
