"""The comparison of the fine-tuned fold models with tree baselines on the same spatial folds.

Baselines: random forest and gradient boosting on centre-pixel values plus climate features, and a
random forest on frozen pretrained image features (Tresson et al.). Every model is scored out of
fold with the same fold ids; the table (metric mean ± std over folds) and the evaluation plots of
the fine-tuned models are logged to the cross-validation run, with the interval reliability diagram and
the DI histogram of its calibration (`soilnet.training.reliability`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from soilnet import storage
from soilnet.data.normalisation import NormStats
from soilnet.evaluation.baselines import centre_pixels, evaluate_baselines, evaluate_feature_forest
from soilnet.evaluation.metrics import format_comparison, summarise_folds
from soilnet.evaluation.plots import fold_error_map, observed_vs_predicted, residuals, target_distributions
from soilnet.models.checkpoint import load_weights
from soilnet.models.factory import build_image_encoder
from soilnet.recipes.recipe import RecipeConfig
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import EvaluateConfig
from soilnet.training.finetune import CrossValidation
from soilnet.training.reliability import calibration_figures
from soilnet.training.samples import SampleSource
from soilnet.training.tasks import IMAGE_ENCODER_FILE
from soilnet.training.window_buffer import ssl_overlap_note

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    """Per-fold metrics of every model, their summary and the printed table."""

    per_fold: pd.DataFrame
    summary: pd.DataFrame
    table: str


def frozen_features(cv: CrossValidation, source: SampleSource, encoders: str) -> np.ndarray:
    """Pretrained image features (N, D) of every labelled row of a cross-validation, in table order."""
    return encoder_features(cv.recipe, cv.stats, cv.table, source, encoders)


@torch.no_grad()
def encoder_features(
    recipe: RecipeConfig, stats: NormStats, table: pd.DataFrame, source: SampleSource, encoders: str
) -> np.ndarray:
    """Features (N, D) of the pretrained image encoder under `encoders` for the rows of `table`, in order."""
    from soilnet.data.normalisation import normalise_batch

    image_cfg = recipe.model.image
    frozen = image_cfg.model_copy(update={"pretrained": None, "frozen": True})
    encoder = build_image_encoder(frozen, recipe.data.n_bands)
    load_weights(encoder, storage.join(encoders, IMAGE_ENCODER_FILE))
    encoder.eval()
    mask = recipe.data.n_bands > len(stats.bands)
    out = []
    for start in range(0, len(table), 128):
        batch = normalise_batch(source.read(table.iloc[start : start + 128]), stats, mask)
        out.append(encoder(torch.from_numpy(batch["image"])).numpy())
    return np.concatenate(out)


def compare_with_baselines(
    cv: CrossValidation,
    source: SampleSource,
    cfg: EvaluateConfig,
    encoders: str | None,
    tracker: RunTracker,
    target: str,
) -> Comparison:
    """Score the baselines on the folds of `cv`, build the comparison table, log table and plots."""
    samples = source.read(cv.table)
    targets = cv.table["target"].to_numpy(dtype=np.float64)
    folds = cv.table["fold"].to_numpy()
    # clouded centre pixels and missing months stay NaN: each fold imputes them from its training rows only
    results = evaluate_baselines(centre_pixels(samples["image"]), samples["climate"], targets, folds, cfg.baselines)
    if cfg.ssl_features and encoders:
        results.append(evaluate_feature_forest(frozen_features(cv, source, encoders), targets, folds, cfg.baselines))
    per_fold = pd.concat([cv.per_fold, *(r.per_fold for r in results)], ignore_index=True)
    summary = summarise_folds(per_fold)
    table = format_comparison(summary, cfg.digits)
    note = ssl_overlap_note(encoders) if encoders else None
    table = f"{table}\n{note}" if note else table
    tracker.log_text(table, "comparison.txt")
    tracker.log_text(per_fold.to_csv(index=False), "comparison_per_fold.csv")
    for row in summary.itertuples(index=False):
        tracker.log_metrics({f"{row.model}.{row.metric}_mean": row.mean, f"{row.model}.{row.metric}_std": row.std})
    if cfg.plots:
        scored = np.isfinite(cv.predictions)
        y, p, f = targets[scored], cv.predictions[scored], folds[scored]
        xs, ys = cv.table["x"].to_numpy()[scored], cv.table["y"].to_numpy()[scored]
        figures = {
            "observed_vs_predicted.png": observed_vs_predicted(y, p, target),
            "residuals.png": residuals(y, p, target),
            "target_distributions.png": target_distributions(y, f, target),
            "fold_error_map.png": fold_error_map(xs, ys, y, p, f, target),
        }
        figures.update(calibration_figures(cv.calibration) if cv.calibration else {})
        for name, figure in figures.items():
            tracker.log_figure(figure, f"plots/{name}")
    log.info("comparison over %d folds:\n%s", len(np.unique(folds)), table)
    tracker.flush()  # the run is already finished: deliver anything spooled during a tracking outage now
    return Comparison(per_fold, summary, table)
