"""Fine-tuning with spatial K-fold cross-validation on Ray Train: one model per fold, one bundle.

For each test fold: training and validation rows come from the other folds (`fold_split`, the
validation rows a compact spatial group); the target is standardised with the training rows'
mean / std; image and climate statistics are label-free (the pretraining statistics, or fitted on
unlabelled locations away from every labelled point), so no test row reaches training or
normalisation. One Ray Train worker group trains the fold models in turn (workers and feeds start
once); early stopping watches the validation loss, and each fold's best epoch (its kept weights)
predicts the test fold in the driver. Folds are nested MLflow runs under one cross-validation run, which gets the
out-of-fold metrics (mean and std over folds) and the bundle of fold models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import ray
import torch

from soilnet import storage
from soilnet.data.folds import fold_split
from soilnet.data.normalisation import NormStats, load_stats, normalise_batch
from soilnet.data.points import TARGET_COLUMNS
from soilnet.data.sampling import steps_per_epoch
from soilnet.data.stream_config import StreamConfig
from soilnet.data.targets import TargetOutput
from soilnet.data.workspace import DataConfig
from soilnet.evaluation.metrics import per_fold_metrics, regression_metrics, summarise_folds
from soilnet.recipes.bundle import BundleMeta, ModelBundle, Scaling, save_bundle
from soilnet.recipes.recipe import RecipeConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.registry import BUNDLE_ARTIFACT, BUNDLE_URL_TAG, cv_metric_key
from soilnet.tracking.runs import RunTracker
from soilnet.training.best import best_folder, read_best
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.job import (
    Resume,
    TrainingJob,
    input_stats,
    unlabelled_table,
)
from soilnet.training.loop import ModelSpec, StepCallback
from soilnet.training.multi_target import (
    MultiTargetTask,
    fold_target_stats,
    fold_test_metrics,
    head_scaling,
    is_single,
    labelled_for,
    out_of_fold,
    output_labels,
    output_predictions,
    per_fold_outputs,
    primary_metric_names,
    with_head_width,
)
from soilnet.training.reliability import BundleCalibration, calibrate_bundle, with_intervals, write_calibration
from soilnet.training.samples import SampleSource
from soilnet.training.tasks import RegressionTask

log = logging.getLogger(__name__)

MODEL_NAME = "finetuned"


@dataclass
class FoldOutcome:
    """One fold's model, target scaling, test predictions and training summary."""

    fold: int
    model: torch.nn.Module
    scaling: Scaling
    test_rows: np.ndarray
    predictions: np.ndarray
    run_id: str
    metrics: dict[str, float]
    #: Several outputs (C1): each output's test predictions (values, or class probabilities).
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


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
    source: SampleSource | None = None
    #: The run's outputs (C1), primary first; ``predictions`` / ``table["target"]`` are the primary's.
    outputs: list[TargetOutput] = field(default_factory=list)
    #: Out-of-fold predictions per output: values (N,) or class probabilities (N, C); NaN where unscored.
    oof: dict[str, np.ndarray] = field(default_factory=dict)
    #: Labels per output (N,): values or class codes, NaN where a row has none.
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    calibration: BundleCalibration | None = None


@torch.no_grad()
def head_outputs(
    module: torch.nn.Module,
    source: SampleSource,
    table: pd.DataFrame,
    stats: NormStats,
    mask_channel: bool,
    batch_size: int = 64,
) -> dict[str, torch.Tensor]:
    """The model's raw head outputs (``prediction`` (N, W), maybe ``log_var``) for the rows of `table`."""
    module.eval()
    parts = []
    for start in range(0, len(table), batch_size):
        batch = normalise_batch(source.read(table.iloc[start : start + batch_size]), stats, mask_channel)
        out = module(torch.from_numpy(batch["image"]), torch.from_numpy(batch["climate"]))
        parts.append({k: out[k].float() for k in ("prediction", "log_var") if k in out})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def predict_table(
    module: torch.nn.Module,
    source: SampleSource,
    table: pd.DataFrame,
    stats: NormStats,
    mask_channel: bool,
    batch_size: int = 64,
) -> np.ndarray:
    """De-standardised predictions (N,) of a one-target model for the rows of `table`."""
    pred = head_outputs(module, source, table, stats, mask_channel, batch_size)["prediction"][:, 0]
    return pred.numpy() * stats.target_std + stats.target_mean


def _val_arrays(
    source: SampleSource, table: pd.DataFrame, stats: NormStats, mask_channel: bool
) -> dict[str, np.ndarray]:
    batch = normalise_batch(source.read(table), stats, mask_channel)
    return {k: batch[k] for k in ("image", "climate", "target")}


def shared_input_stats(job: TrainingJob, cfg: FinetuneConfig, labelled: pd.DataFrame) -> NormStats:
    """Label-free input statistics: the pretraining ones, or fitted on unlabelled locations."""
    if cfg.pretrained:
        return load_stats(storage.join(cfg.pretrained, "normalisation.json"))
    stream = job.stream
    unlabelled = unlabelled_table(
        job.cubes, stream.model_copy(update={"n_unlabelled": max(256, stream.n_unlabelled)}), labelled
    )
    source = job.source(unlabelled, job.train.model_copy(update={"data_source": "stream"}))
    return input_stats(source, unlabelled, job.cubes, cfg.normalisation, stream.seed)


@dataclass
class FoldPlan:
    """A fold's rows, target-scaled statistics and model spec, prepared in the driver."""

    fold: int
    rows: dict[str, pd.DataFrame]
    test_rows: np.ndarray
    stats: NormStats
    model: ModelSpec


def run_cross_validation(
    data: DataConfig,
    train: TrainConfig,
    cfg: FinetuneConfig,
    tracking: TrackingConfig,
    resume_from: str | None = None,
    on_step: StepCallback | None = None,
    config_text: str | None = None,
) -> CrossValidation:
    """Train one model per spatial fold in one worker group, score the test folds, write the bundle, track it all."""
    job = TrainingJob.prepare(data, train, tracking, cfg.run_name, cfg.recipe, cfg.stream, resume_from)
    labelled, outputs = labelled_for(data, cfg)
    if is_single(outputs):
        task = RegressionTask(job.recipe, cfg.loss, cfg.huber_delta, cfg.pretrained, cfg.freeze_backbone)
    else:
        job.recipe = with_head_width(job.recipe, outputs)
        task = MultiTargetTask(job.recipe, outputs, cfg.loss, cfg.huber_delta, cfg.pretrained, cfg.freeze_backbone)
    folds = cfg.only_folds or sorted(labelled["fold"].unique().tolist())
    base_stats = shared_input_stats(job, cfg, labelled)
    source = job.source(labelled)
    parent = job.start_run("finetune", cfg, {"n_points": len(labelled)}, config_text)
    fold_runs = fold_trackers(job.resume, folds, parent, tracking, data.root, cfg.run_name)
    record = job.record(
        "finetune", cfg, parent, folds=folds, fold_runs={str(f): t.run_id for f, t in fold_runs.items()}
    )
    plans, datasets = [], {}
    for fold in folds:
        plan, fold_datasets = plan_fold(fold, labelled, source, base_stats, job, cfg, fold_runs[fold], record, outputs)
        plans.append(plan)
        datasets.update(fold_datasets)
    models = [plan.model for plan in plans]
    spec = job.worker_spec(task, cfg.optim, models, cfg.epochs, on_step, cfg.patience, cfg.min_delta)
    with job.failing([*fold_runs.values(), parent]):
        job.fit(spec, datasets)
        outcomes = [score_fold(plan, job.recipe, source, job.stream, job.run_url, outputs) for plan in plans]
    result = finish_cross_validation(outcomes, labelled, base_stats, job, cfg, parent, source, outputs)
    result.source = source
    return result


def fold_trackers(
    resume: Resume | None, folds: list[int], parent: RunTracker, tracking: TrackingConfig, workspace: str, name: str
) -> dict[int, RunTracker]:
    """The nested MLflow run of every fold: those stored with a resumed checkpoint, else new ones."""
    if resume is not None:
        if resume.job.get("kind") != "finetune" or resume.job.get("folds") != folds:
            raise ValueError(
                f"{resume.folder}: a {resume.job.get('kind')} checkpoint of folds {resume.job.get('folds')}; "
                f"this job trains folds {folds} (set finetune.only_folds to match)"
            )
        stored = resume.job["fold_runs"]
        return {fold: RunTracker.for_run(tracking, workspace, stored[str(fold)], parent.uri) for fold in folds}
    return {
        fold: RunTracker.start(
            tracking, workspace, f"{name}-fold{fold}", parent=parent, tags={"soilnet.fold": str(fold)}
        )
        for fold in folds
    }


def plan_fold(
    fold: int,
    labelled: pd.DataFrame,
    source: SampleSource,
    base_stats: NormStats,
    job: TrainingJob,
    cfg: FinetuneConfig,
    tracker: RunTracker,
    record: dict,
    outputs: list[TargetOutput],
) -> tuple[FoldPlan, dict]:
    """Split a fold's rows, scale the target on its training rows, and prepare its model spec and batches."""
    split = fold_split(
        labelled["fold"].to_numpy(), fold, labelled["x"], labelled["y"], cfg.folds.val_fraction, cfg.folds.seed
    )
    rows = {name: labelled.iloc[getattr(split, name)] for name in ("train", "val", "test")}
    stats = fold_target_stats(base_stats, rows["train"], outputs, cfg.class_weighting)
    tracker.log_params({"fold": fold, **{f"n_{k}": len(v) for k, v in rows.items()}})
    name = f"fold_{fold}"
    train, stream = job.train, job.stream
    batches, datasets = source.batches(rows["train"], range(cfg.epochs), train.max_workers, stats, name)
    model = ModelSpec(
        name=name,
        batches=batches,
        stats=stats,
        steps_per_epoch=cfg.steps_per_epoch
        or steps_per_epoch(len(rows["train"]), train.max_workers, stream.batch_size),
        seed=train.seed + fold,
        tracker=tracker,
        val=ray.put(_val_arrays(source, rows["val"], stats, stream.mask_channel)),
        job={**record, "fold": fold},
    )
    return FoldPlan(fold, rows, split.test, stats, model), datasets


def score_fold(
    plan: FoldPlan,
    recipe: RecipeConfig,
    source: SampleSource,
    stream: StreamConfig,
    run_url: str,
    outputs: list[TargetOutput],
) -> FoldOutcome:
    """Load a fold's best weights, predict its test rows, log the test metrics and close its run."""
    folder = best_folder(run_url, plan.model.name)
    state, entry = read_best(folder)
    model = recipe.build_model()
    model.load_state_dict(state)
    test = plan.rows["test"]
    scaling, predicted = (plan.stats.target_mean, plan.stats.target_std), {}
    if is_single(outputs):
        predictions = predict_table(model, source, test, plan.stats, stream.mask_channel)
        test_metrics = regression_metrics(test["target"].to_numpy(), predictions)
    else:
        raw = head_outputs(model, source, test, plan.stats, stream.mask_channel)
        scaling, predicted = head_scaling(plan.stats, outputs), output_predictions(raw, plan.stats, outputs)
        predictions = predicted[outputs[0].name]
        test_metrics = fold_test_metrics(output_labels(test, outputs), predicted, outputs)
    tracker = plan.model.tracker
    tracker.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
    tracker.set_tags({"soilnet.best_weights": folder, "soilnet.best_epoch": entry["epoch"]})
    tracker.finish()
    score = "rmse" if "rmse" in test_metrics else "macro_f1"
    log.info(
        "fold %d: test %s %.3f (%d rows, best epoch %d)",
        plan.fold, score.upper(), test_metrics.get(score, np.nan), len(test), entry["epoch"],
    )  # fmt: skip
    return FoldOutcome(
        plan.fold,
        model.eval(),
        scaling,
        plan.test_rows,
        predictions,
        tracker.run_id,
        {"best_epoch": entry["epoch"], "best_val_loss": entry["score"]},
        predicted,
    )


def finish_cross_validation(
    outcomes: list[FoldOutcome],
    labelled: pd.DataFrame,
    stats: NormStats,
    job: TrainingJob,
    cfg: FinetuneConfig,
    parent: RunTracker,
    source: SampleSource,
    outputs: list[TargetOutput],
) -> CrossValidation:
    """Out-of-fold metrics, the bundle of fold models with its intervals and AOA, the parent run's summary."""
    oof, labels, targets = {}, {}, labelled["target"].to_numpy()
    if is_single(outputs):
        predictions = np.full(len(labelled), np.nan)
        for outcome in outcomes:
            predictions[outcome.test_rows] = outcome.predictions
        scored = np.isfinite(predictions)
        fold_ids = labelled["fold"].to_numpy()[scored]
        per_fold = per_fold_metrics(targets[scored], predictions[scored], fold_ids, MODEL_NAME)
    else:
        oof = out_of_fold([(o.test_rows, o.outputs) for o in outcomes], len(labelled), outputs)
        labels, predictions = output_labels(labelled, outputs), oof[outputs[0].name]
        per_fold = per_fold_outputs(labels, oof, labelled["fold"].to_numpy(), outputs, MODEL_NAME)
    summary = summarise_folds(per_fold)
    primary = summary[summary["target"] == summary["target"].iloc[0]]
    cv_metrics = {}
    for metric in primary_metric_names(outputs):
        row = primary[primary["metric"] == metric].iloc[0]
        cv_metrics[cv_metric_key(metric)] = float(row["mean"])
        cv_metrics[f"cv_{metric}_std"] = float(row["std"])
    stream, inputs, recipe = job.stream, job.cubes, job.recipe
    meta = BundleMeta(
        targets=[o.name for o in outputs],
        units=["" if o.categorical else TARGET_COLUMNS.get(o.column, "") for o in outputs],
        kinds=[o.kind for o in outputs] if not is_single(outputs) else [],
        classes={o.name: list(o.classes) for o in outputs if o.categorical},
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
    bundle = cfg.bundle or storage.join(job.run_url, BUNDLE_ARTIFACT)
    models = [o.model for o in outcomes]
    calibration = calibrate_bundle(
        ModelBundle(models, stats, recipe, meta),
        source,
        labelled,
        labels or {meta.targets[0]: targets},
        oof or {meta.targets[0]: predictions},
        cfg.calibration,
    )
    save_bundle(bundle, recipe, models, stats, meta.model_copy(update=calibration.meta_fields()))
    write_calibration(calibration, bundle)
    per_fold = with_intervals(per_fold, calibration)
    summary = summarise_folds(per_fold)
    parent.log_metrics(calibration.metrics())
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
        calibration=calibration,
        outputs=outputs,
        oof=oof,
        labels=labels,
    )
