"""The comparison of the fine-tuned fold models with tree baselines on the same spatial folds.

Baselines: random forest and gradient boosting on centre-pixel values plus climate features, and a
random forest on frozen pretrained image features (Tresson et al.). Every model is scored out of
fold with the same fold ids; the table (metric mean ± std over folds) and the evaluation plots of
the fine-tuned models are logged to the cross-validation run, with the interval reliability diagram and
the DI histogram of its calibration (`soilnet.training.reliability`).

Every output of the run (contract C1) is compared on its own labelled rows, in its own row block of the
table: a continuous one with the regressors, a categorical one with the random forest classifier (and its
per-class precision / recall and confusion matrices as artifacts, and a ``CLASSIFY[<target>]`` line). MLflow
metrics are named ``<target>.<model>.<metric>_mean`` / ``_std``; the primary output's are also logged
without the target (``<model>.<metric>_mean``), as before several targets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from soilnet import storage
from soilnet.data.normalisation import NormStats
from soilnet.data.targets import TargetOutput
from soilnet.evaluation.baselines import CrossValResult, centre_pixels, evaluate_baselines, evaluate_feature_forest
from soilnet.evaluation.classification import (
    ClassScores,
    classify_line,
    confusion_totals,
    format_class_table,
    per_fold_classification,
    summarise_classes,
)
from soilnet.evaluation.metrics import format_comparison, summarise_folds
from soilnet.evaluation.plots import fold_error_map, observed_vs_predicted, residuals, target_distributions
from soilnet.models.checkpoint import load_weights
from soilnet.models.factory import build_image_encoder
from soilnet.recipes.recipe import RecipeConfig
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import EvaluateConfig
from soilnet.training.finetune import MODEL_NAME, CrossValidation
from soilnet.training.reliability import calibration_figures
from soilnet.training.samples import SampleSource
from soilnet.training.tasks import IMAGE_ENCODER_FILE
from soilnet.training.window_buffer import ssl_overlap_note

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    """Per-fold metrics of every model and target, their summary and the printed table (with the CLASSIFY lines).

    ``classes``: the per-class and confusion tables of the categorical targets (None without any);
    ``baselines``: every baseline's out-of-fold predictions (for the regional breakdown).
    """

    per_fold: pd.DataFrame
    summary: pd.DataFrame
    table: str
    lines: list[str] = field(default_factory=list)
    classes: ClassScores | None = None
    baselines: list[CrossValResult] = field(default_factory=list)


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


def run_outputs(cv: CrossValidation, target: str) -> list[TargetOutput]:
    """The outputs of a cross-validation run, primary first (a run of one unnamed output: `target`)."""
    return cv.outputs or [TargetOutput(target, target, "continuous")]


def output_arrays(cv: CrossValidation, output: TargetOutput) -> tuple[np.ndarray, np.ndarray]:
    """An output's labels (N,) (values or class codes, NaN where missing) and out-of-fold predictions."""
    if output.name in cv.labels:
        return cv.labels[output.name], cv.oof[output.name]
    return cv.table["target"].to_numpy(dtype=np.float64), cv.predictions


def named_per_fold(cv: CrossValidation, primary: str) -> pd.DataFrame:
    """The fine-tuned models' per-fold table with every row's target named (a one-target run: the primary)."""
    per_fold = cv.per_fold
    if "target" not in per_fold.columns or (per_fold["target"].fillna("") == "").all():
        per_fold = per_fold.assign(target=primary)
    return per_fold


def output_baselines(
    cv: CrossValidation,
    output: TargetOutput,
    samples: dict[str, np.ndarray],
    ssl: np.ndarray | None,
    cfg: EvaluateConfig,
) -> tuple[list[CrossValResult], ClassScores | None]:
    """The baselines of one output on its labelled rows (same folds), and the fine-tuned models' class
    scores when the output is categorical."""
    labels, predictions = output_arrays(cv, output)
    rows = np.isfinite(labels)
    folds = cv.table["fold"].to_numpy()[rows]
    classes = list(output.classes) if output.categorical else None
    # clouded centre pixels and missing months stay NaN: each fold imputes them from its training rows only
    centre, climate, y = centre_pixels(samples["image"][rows]), samples["climate"][rows], labels[rows]
    results = evaluate_baselines(centre, climate, y, folds, cfg.baselines, output.name, classes)
    if ssl is not None:
        results.append(evaluate_feature_forest(ssl[rows], y, folds, cfg.baselines, target=output.name, classes=classes))
    if classes is None:
        return results, None
    scored = rows & np.isfinite(predictions).all(axis=1)
    codes, proba, fold_ids = labels[scored].astype(np.int64), predictions[scored], cv.table["fold"].to_numpy()[scored]
    own = per_fold_classification(codes, proba, fold_ids, MODEL_NAME, output.name, classes)
    return results, ClassScores.concat([own, *(r.scores for r in results if r.scores is not None)])


def log_class_scores(tracker: RunTracker, scores: ClassScores, digits: int) -> None:
    """Per-class precision / recall (per fold and summarised) and the confusion matrices as run artifacts."""
    tracker.log_text(format_class_table(summarise_classes(scores.per_class), digits), "classes.txt")
    tracker.log_text(scores.per_class.to_csv(index=False), "classes_per_fold.csv")
    tracker.log_text(scores.confusion.to_csv(index=False), "confusion_per_fold.csv")
    tracker.log_text(confusion_totals(scores.confusion).to_csv(index=False), "confusion.csv")


def log_summary(tracker: RunTracker, summary: pd.DataFrame, primary: str) -> None:
    """MLflow metrics ``<target>.<model>.<metric>_mean`` / ``_std``; the primary target's also without the target."""
    metrics = {}
    for row in summary.itertuples(index=False):
        names = [f"{row.target}.{row.model}.{row.metric}"]
        if row.target == primary:
            names.append(f"{row.model}.{row.metric}")
        metrics.update({f"{name}_{stat}": getattr(row, stat) for name in names for stat in ("mean", "std")})
    tracker.log_metrics(metrics)


def log_plots(tracker: RunTracker, cv: CrossValidation, outputs: list[TargetOutput]) -> None:
    """Evaluation plots of each continuous output (under ``plots/``; other than the primary's: ``plots/<target>/``)."""
    folds_all = cv.table["fold"].to_numpy()
    for output in outputs:
        if output.categorical:
            continue
        labels, predictions = output_arrays(cv, output)
        scored = np.isfinite(predictions) & np.isfinite(labels)
        y, p, f, name = labels[scored], predictions[scored], folds_all[scored], output.name
        xs, ys = cv.table["x"].to_numpy()[scored], cv.table["y"].to_numpy()[scored]
        figures = {
            "observed_vs_predicted.png": observed_vs_predicted(y, p, name),
            "residuals.png": residuals(y, p, name),
            "target_distributions.png": target_distributions(y, f, name),
            "fold_error_map.png": fold_error_map(xs, ys, y, p, f, name),
        }
        folder = "plots" if output is outputs[0] else f"plots/{name}"
        for file, figure in figures.items():
            tracker.log_figure(figure, f"{folder}/{file}")


def compare_with_baselines(
    cv: CrossValidation,
    source: SampleSource,
    cfg: EvaluateConfig,
    encoders: str | None,
    tracker: RunTracker,
    target: str,
) -> Comparison:
    """Score the baselines on the folds of `cv` for each output, build the comparison table, log table and plots."""
    outputs = run_outputs(cv, target)
    samples = source.read(cv.table)
    ssl = frozen_features(cv, source, encoders) if cfg.ssl_features and encoders else None
    results, class_scores = [], []
    for output in outputs:
        baselines, scores = output_baselines(cv, output, samples, ssl, cfg)
        results += baselines
        class_scores += [scores] if scores is not None else []
    primary = outputs[0].name
    per_fold = pd.concat([named_per_fold(cv, primary), *(r.per_fold for r in results)], ignore_index=True)
    summary = summarise_folds(per_fold)
    lines = [classify_line(summary, o.name, MODEL_NAME) for o in outputs if o.categorical]
    note = ssl_overlap_note(encoders) if encoders else None
    table = "\n".join([format_comparison(summary, cfg.digits), *([note] if note else []), *lines])
    tracker.log_text(table, "comparison.txt")
    tracker.log_text(per_fold.to_csv(index=False), "comparison_per_fold.csv")
    log_summary(tracker, summary, primary)
    classes = ClassScores.concat(class_scores) if class_scores else None
    if classes is not None:
        log_class_scores(tracker, classes, cfg.digits)
    if cfg.plots:
        log_plots(tracker, cv, outputs)
        for file, figure in (calibration_figures(cv.calibration) if cv.calibration else {}).items():
            tracker.log_figure(figure, f"plots/{file}")
    log.info("comparison over %d folds:\n%s", len(np.unique(cv.table["fold"])), table)
    tracker.flush()  # the run is already finished: deliver anything spooled during a tracking outage now
    return Comparison(per_fold, summary, table, lines, classes, results)
