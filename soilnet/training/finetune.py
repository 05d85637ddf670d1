"""Fine-tuning with spatial K-fold cross-validation on Ray Train: one model per fold, one bundle.

For each test fold: training and validation rows come from the other folds (`fold_split`, the
validation rows a compact spatial group); the target is standardised with the training rows'
mean / std; image and climate statistics are label-free (the pretraining statistics, or fitted on
unlabelled locations away from every labelled point), so no test row reaches training or
normalisation. Early stopping watches the validation loss; the best checkpoint predicts the test
fold in the driver. Folds are nested MLflow runs under one cross-validation run, which gets the
out-of-fold metrics (mean and std over folds) and the bundle of fold models.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import ray
import torch

from soilnet import storage
from soilnet.config import DataConfig
from soilnet.data.normalisation import NormStats, load_stats, normalise_batch
from soilnet.data.points import TARGET_COLUMNS
from soilnet.data.sampling import steps_per_epoch
from soilnet.evaluation.metrics import METRIC_NAMES, per_fold_metrics, regression_metrics, summarise_folds
from soilnet.evaluation.spatial_folds import fold_split
from soilnet.models.bundle import BundleMeta, save_bundle
from soilnet.models.recipe import RecipeConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.registry import BUNDLE_ARTIFACT, BUNDLE_URL_TAG, cv_metric_key
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.inputs import (
    CubeInputs,
    Resume,
    fit_recipe,
    input_stats,
    labelled_table,
    make_source,
    unlabelled_table,
    with_target_stats,
)
from soilnet.training.loop import WorkerSpec
from soilnet.training.sources import CachedSource, CubeSource
from soilnet.training.state import read_state
from soilnet.training.tasks import RegressionTask
from soilnet.training.trainer import best_checkpoint, fit

log = logging.getLogger(__name__)

MODEL_NAME = "finetuned"


@dataclass
class FoldOutcome:
    """One fold's model, target scaling, test predictions and training summary."""

    fold: int
    model: torch.nn.Module
    scaling: tuple[float, float]
    test_rows: np.ndarray
    predictions: np.ndarray
    run_id: str
    metrics: dict[str, float]


@dataclass
class CrossValidation:
    """The cross-validation run: locations with folds, out-of-fold predictions, metrics, bundle."""

    run_id: str
    table: pd.DataFrame
    predictions: np.ndarray
    per_fold: pd.DataFrame
    summary: pd.DataFrame
    bundle: str
    stats: NormStats
    recipe: RecipeConfig
    fold_runs: dict[int, str] = field(default_factory=dict)
    source: CubeSource | CachedSource | None = None


@torch.no_grad()
def predict_table(
    module: torch.nn.Module,
    source: CubeSource | CachedSource,
    table: pd.DataFrame,
    stats: NormStats,
    mask_channel: bool,
    batch_size: int = 64,
) -> np.ndarray:
    """De-standardised predictions (N,) of a model for the rows of `table`."""
    module.eval()
    out = []
    for start in range(0, len(table), batch_size):
        batch = normalise_batch(source.read(table.iloc[start : start + batch_size]), stats, mask_channel)
        pred = module(torch.from_numpy(batch["image"]), torch.from_numpy(batch["climate"]))["prediction"][:, 0]
        out.append(pred.float().numpy() * stats.target_std + stats.target_mean)
    return np.concatenate(out)


def _val_arrays(source, table: pd.DataFrame, stats: NormStats, mask_channel: bool) -> dict[str, np.ndarray]:
    batch = normalise_batch(source.read(table), stats, mask_channel)
    return {k: batch[k] for k in ("image", "climate", "target")}


def shared_input_stats(
    data: DataConfig, train: TrainConfig, cfg: FinetuneConfig, inputs: CubeInputs, stream, labelled
) -> NormStats:
    """Label-free input statistics: the pretraining ones, or fitted on unlabelled locations."""
    if cfg.pretrained:
        return load_stats(storage.join(cfg.pretrained, "normalisation.json"))
    unlabelled = unlabelled_table(
        inputs, stream.model_copy(update={"n_unlabelled": max(256, stream.n_unlabelled)}), labelled
    )
    source = make_source(train.model_copy(update={"data_source": "stream"}), inputs, stream, unlabelled)
    return input_stats(source, unlabelled, inputs, cfg.normalisation, stream.seed)


def run_cross_validation(
    data: DataConfig,
    train: TrainConfig,
    cfg: FinetuneConfig,
    tracking: TrackingConfig,
    resume_from: str | None = None,
    on_step: Callable[[int, int], None] | None = None,
    config_text: str | None = None,
) -> CrossValidation:
    """Train one model per spatial fold, score the test folds, write the bundle, track it all in MLflow."""
    workspace = data.root
    inputs = CubeInputs.open(data)
    recipe, stream = fit_recipe(cfg.recipe, inputs, cfg.stream)
    labelled = labelled_table(data, cfg.target, cfg.folds)
    base_stats = shared_input_stats(data, train, cfg, inputs, stream, labelled)
    source = make_source(train, inputs, stream, labelled)
    task = RegressionTask(recipe, cfg.loss, cfg.huber_delta, cfg.pretrained, cfg.freeze_backbone)
    scratch = tempfile.TemporaryDirectory()
    resume = Resume.fetch(resume_from, scratch) if resume_from else None
    if resume is not None:
        parent = RunTracker(resume.job["tracking_uri"], resume.job["parent_run_id"])
    else:
        parent = RunTracker.start(tracking, workspace, cfg.run_name, tags={"soilnet.job": "finetune"})
        parent.log_params(
            {
                "finetune": cfg.model_dump(mode="json"),
                "train": train.model_dump(mode="json"),
                "recipe": recipe.model_dump(mode="json"),
                "n_points": len(labelled),
            }
        )
        if config_text:
            parent.log_text(config_text, "config.yaml")
    folds = sorted(labelled["fold"].unique().tolist())
    outcomes = []
    try:
        for fold in cfg.only_folds or folds:
            fold_resume = resume if resume is not None and resume.job.get("fold") == fold else None
            outcomes.append(
                train_fold(
                    fold,
                    labelled,
                    source,
                    base_stats,
                    recipe,
                    task,
                    stream,
                    data,
                    train,
                    cfg,
                    tracking,
                    parent,
                    fold_resume,
                    on_step,
                )
            )
    except Exception:
        parent.finish("FAILED")
        raise
    finally:
        scratch.cleanup()
    result = finish_cross_validation(outcomes, labelled, base_stats, recipe, stream, inputs, data, cfg, parent)
    result.source = source
    return result


def train_fold(
    fold: int,
    labelled: pd.DataFrame,
    source: CubeSource | CachedSource,
    base_stats: NormStats,
    recipe: RecipeConfig,
    task: RegressionTask,
    stream,
    data: DataConfig,
    train: TrainConfig,
    cfg: FinetuneConfig,
    tracking: TrackingConfig,
    parent: RunTracker,
    resume: Resume | None,
    on_step: Callable[[int, int], None] | None,
) -> FoldOutcome:
    """Train, early-stop and score the model of one test fold (a nested MLflow run)."""
    split = fold_split(
        labelled["fold"].to_numpy(), fold, labelled["x"], labelled["y"], cfg.folds.val_fraction, cfg.folds.seed
    )
    rows = {name: labelled.iloc[getattr(split, name)] for name in ("train", "val", "test")}
    stats = with_target_stats(base_stats, rows["train"]["target"].to_numpy())
    if resume is not None:
        tracker = RunTracker(resume.job["tracking_uri"], resume.job["mlflow_run_id"])
    else:
        tracker = RunTracker.start(
            tracking, data.root, f"{cfg.run_name}-fold{fold}", parent=parent, tags={"soilnet.fold": str(fold)}
        )
        tracker.log_params({"fold": fold, **{f"n_{k}": len(v) for k, v in rows.items()}})
    steps = cfg.steps_per_epoch or steps_per_epoch(len(rows["train"]), train.num_workers, stream.batch_size)
    val = ray.put(_val_arrays(source, rows["val"], stats, stream.mask_channel))
    job = {
        "kind": "finetune",
        "fold": fold,
        "config": cfg.model_dump(mode="json"),
        "recipe": recipe.model_dump(mode="json"),
        "tracking_uri": tracker.uri,
        "mlflow_run_id": tracker.run_id,
        "parent_run_id": parent.run_id,
    }
    spec = WorkerSpec(
        task=task,
        optim=cfg.optim,
        stats=stats,
        epochs=cfg.epochs,
        steps_per_epoch=steps,
        batch_size=stream.batch_size,
        grad_accum_steps=train.grad_accum_steps,
        use_amp=train.use_amp,
        seed=train.seed + fold,
        threads=train.threads_per_worker,
        patience=cfg.patience,
        min_delta=cfg.min_delta,
        tracker=tracker,
        resume_from=resume.folder if resume else None,
        val=val,
        job=job,
        on_step=on_step,
    )
    dataset = source.dataset(rows["train"], range(cfg.epochs), train.num_workers, stats)
    try:
        result = fit(spec, {"train": dataset}, train, data.url("runs"), f"{cfg.run_name}/fold_{fold}")
    except Exception:
        tracker.finish("FAILED")
        raise
    checkpoint = best_checkpoint(result, task.score)
    model = recipe.build_model()
    with checkpoint.as_directory() as folder:
        model.load_state_dict(read_state(folder)["model"])
    predictions = predict_table(model, source, rows["test"], stats, stream.mask_channel)
    test_metrics = regression_metrics(rows["test"]["target"].to_numpy(), predictions)
    tracker.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
    tracker.set_tags({"soilnet.checkpoint": checkpoint.path})
    tracker.finish()
    log.info("fold %d: test RMSE %.3f (%d rows)", fold, test_metrics["rmse"], len(rows["test"]))
    return FoldOutcome(
        fold,
        model.eval(),
        (stats.target_mean, stats.target_std),
        split.test,
        predictions,
        tracker.run_id,
        dict(result.metrics or {}),
    )


def finish_cross_validation(
    outcomes: list[FoldOutcome],
    labelled: pd.DataFrame,
    stats: NormStats,
    recipe: RecipeConfig,
    stream,
    inputs: CubeInputs,
    data: DataConfig,
    cfg: FinetuneConfig,
    parent: RunTracker,
) -> CrossValidation:
    """Out-of-fold metrics, the bundle of fold models and the parent run's summary."""
    predictions = np.full(len(labelled), np.nan)
    for outcome in outcomes:
        predictions[outcome.test_rows] = outcome.predictions
    scored = np.isfinite(predictions)
    targets = labelled["target"].to_numpy()
    per_fold = per_fold_metrics(targets[scored], predictions[scored], labelled["fold"].to_numpy()[scored], MODEL_NAME)
    summary = summarise_folds(per_fold)
    cv_metrics = {}
    for metric in METRIC_NAMES:
        row = summary[summary["metric"] == metric].iloc[0]
        cv_metrics[cv_metric_key(metric)] = float(row["mean"])
        cv_metrics[f"cv_{metric}_std"] = float(row["std"])
    meta = BundleMeta(
        targets=[cfg.target],
        units=[TARGET_COLUMNS.get(cfg.target, "")],
        bands=inputs.bands,
        climate_variables=inputs.variables,
        patch_px=stream.patch_px,
        months=stream.months,
        mask_channel=stream.mask_channel,
        folds=[o.fold for o in outcomes],
        target_scaling=[o.scaling for o in outcomes],
        metrics={k: v for k, v in cv_metrics.items() if np.isfinite(v)},
        mlflow_run_id=parent.run_id,
    )
    bundle = cfg.bundle or storage.join(data.url("runs"), cfg.run_name, BUNDLE_ARTIFACT)
    save_bundle(bundle, recipe, [o.model for o in outcomes], stats, meta)
    parent.log_metrics(cv_metrics)
    parent.log_folder(bundle, BUNDLE_ARTIFACT)
    parent.log_text(per_fold.to_csv(index=False), "per_fold_metrics.csv")
    parent.set_tags({BUNDLE_URL_TAG: bundle})
    parent.finish()
    return CrossValidation(
        parent.run_id,
        labelled,
        predictions,
        per_fold,
        summary,
        bundle,
        stats,
        recipe,
        {o.fold: o.run_id for o in outcomes},
    )
