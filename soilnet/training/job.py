"""A training job: the preparation pretraining and fine-tuning share, and the inputs it hands on.

`TrainingJob.prepare` refuses an earlier run's folder and a local run folder on a multi-node cluster
(before any sample is read), opens the cubes
once, fits the recipe's shapes to them and fetches the checkpoint to resume; the job then starts
(or re-attaches) its MLflow run, builds the worker spec and runs Ray Train, marking its runs
FAILED if anything raises. The helpers below build its location tables, sample source and
normalisation statistics.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.data.folds import FoldConfig
from soilnet.data.locations import labelled_locations, unlabelled_locations
from soilnet.data.normalisation import NormStats, fit_normalisation
from soilnet.data.points import read_points
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.recipes.recipe import RecipeConfig, load_recipe
from soilnet.redaction import redact_userinfo, usable_uri
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.datasets import training_inputs
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import OptimConfig, TrainConfig
from soilnet.training.loop import ModelSpec, StepCallback, WorkerSpec
from soilnet.training.samples import CachedSource, CubeInputs, CubeSource, SampleSource
from soilnet.training.state import read_job
from soilnet.training.tasks import Task
from soilnet.training.trainer import check_shared_storage, ensure_ray, fit, refuse_earlier_run

log = logging.getLogger(__name__)


def fit_recipe(recipe_url: str, inputs: CubeInputs, stream: StreamConfig) -> tuple[RecipeConfig, StreamConfig]:
    """The recipe with band and variable counts of the cubes, and the stream with the recipe's patch and months."""
    recipe = load_recipe(recipe_url)
    n_bands = len(inputs.bands) + int(stream.mask_channel)
    data = recipe.data.model_copy(update={"n_bands": n_bands, "n_climate_vars": len(inputs.variables)})
    recipe = recipe.model_copy(update={"data": data})
    if recipe.model.location is not None:  # where the samples' x/y and query offsets are
        grid = inputs.raster.grid
        location = recipe.model.location.model_copy(update={"epsg": grid.epsg, "pixel_m": grid.res})
        recipe = recipe.model_copy(update={"model": recipe.model.model_copy(update={"location": location})})
    stream = stream.model_copy(update={"patch_px": recipe.data.patch_px, "months": recipe.data.n_months})
    return RecipeConfig.model_validate(recipe.model_dump()), stream


def labelled_table(data: DataConfig, target: str, folds: FoldConfig, spectral_weight: float = 1.0) -> pd.DataFrame:
    """The labelled locations of the points table with their spatial fold ids (and loss weights)."""
    points, _ = read_points(data.url("points"), targets=[target])
    return labelled_locations(points, target, folds, spectral_weight)


def unlabelled_table(inputs: CubeInputs, stream: StreamConfig, exclude: pd.DataFrame) -> pd.DataFrame:
    """Unlabelled locations away from every labelled point of `exclude` (label-free, test-free)."""
    xy = exclude[["x", "y"]].to_numpy() if len(exclude) else None
    table = unlabelled_locations(inputs.raster, stream, xy)
    if len(table) == 0:
        raise ValueError("no unlabelled location survived the buffer and masks: lower stream.buffer_px")
    return table


def make_source(train: TrainConfig, inputs: CubeInputs, stream: StreamConfig, table: pd.DataFrame) -> SampleSource:
    """The configured sample source for the rows of `table`."""
    if train.data_source == "cache":
        return CachedSource(inputs, stream, table, train.cache_device)
    return CubeSource(inputs, stream)


def input_stats(source: SampleSource, table: pd.DataFrame, inputs: CubeInputs, method: str, seed: int) -> NormStats:
    """Image and climate statistics of the (unlabelled) rows of `table`."""
    return fit_normalisation(table, source.read, inputs.bands, inputs.variables, method=method, seed=seed)


def with_target_stats(stats: NormStats, targets: np.ndarray) -> NormStats:
    """`stats` with the target mean / std of the given training targets."""
    values = np.asarray(targets, dtype=np.float64)
    std = float(values.std()) if values.size > 1 and values.std() > 0 else 1.0
    return stats.model_copy(update={"target_mean": float(values.mean()), "target_std": std})


@dataclass(frozen=True)
class Resume:
    """A checkpoint to resume from: its local folder and the job description stored with it."""

    folder: str
    job: dict

    @classmethod
    def fetch(cls, url: str, scratch: tempfile.TemporaryDirectory) -> Resume:
        """Bring a checkpoint folder (local or s3://) to local disk and read its job description."""
        loc = storage.resolve(url)
        folder = loc.path
        if loc.is_s3:
            folder = scratch.name
            loc.fs.get(loc.path.rstrip("/") + "/", folder, recursive=True)
        return cls(folder, read_job(folder))


@dataclass
class TrainingJob:
    """A prepared training job: its workspace, settings, opened cubes, fitted recipe and stream, resume checkpoint."""

    data: DataConfig
    train: TrainConfig
    tracking: TrackingConfig
    run_name: str
    runs: str
    cubes: CubeInputs
    recipe: RecipeConfig
    stream: StreamConfig
    resume: Resume | None
    scratch: tempfile.TemporaryDirectory

    @classmethod
    def prepare(
        cls,
        data: DataConfig,
        train: TrainConfig,
        tracking: TrackingConfig,
        run_name: str,
        recipe_url: str,
        stream: StreamConfig,
        resume_from: str | None = None,
    ) -> TrainingJob:
        """Refuse an earlier run's folder or local checkpoints on a multi-node cluster (before any sample is read),
        open the cubes, fit the recipe, get a resume."""
        runs = data.url("runs")
        refuse_earlier_run(runs, run_name, resume_from)
        ensure_ray()
        check_shared_storage(runs)
        cubes = CubeInputs.open(data)
        recipe, stream = fit_recipe(recipe_url, cubes, stream)
        scratch = tempfile.TemporaryDirectory()
        resume = Resume.fetch(resume_from, scratch) if resume_from else None
        return cls(data, train, tracking, run_name, runs, cubes, recipe, stream, resume, scratch)

    @property
    def run_url(self) -> str:
        """The run's folder: Ray Train's checkpoints and every model's best weights."""
        return storage.join(self.runs, self.run_name)

    def source(self, table: pd.DataFrame, train: TrainConfig | None = None) -> SampleSource:
        """The sample source of `table`'s rows (``train.data_source`` of the job, or of `train`)."""
        return make_source(train or self.train, self.cubes, self.stream, table)

    def start_run(
        self, kind: str, cfg: StrictModel, counts: dict[str, int], config_text: str | None = None
    ) -> RunTracker:
        """The job's MLflow run: the run stored with a resumed checkpoint, else a new run with the job's parameters
        and the datasets it trains on (points table, cubes)."""
        if self.resume is not None:
            stored = self.resume.job
            uri = usable_uri(stored["tracking_uri"])
            return RunTracker.for_run(self.tracking, self.data.root, stored["mlflow_run_id"], uri)
        tracker = RunTracker.start(self.tracking, self.data.root, self.run_name, tags={"soilnet.job": kind})
        tracker.log_params(
            {
                kind: cfg.model_dump(mode="json"),
                "train": self.train.model_dump(mode="json"),
                "recipe": self.recipe.model_dump(mode="json"),
                **counts,
            }
        )
        tracker.log_inputs(training_inputs(self.data.url("points"), self.cubes.raster.url, self.cubes.climate.url))
        if config_text:
            tracker.log_text(config_text, "config.yaml")
        return tracker

    def record(self, kind: str, cfg: StrictModel, tracker: RunTracker, **extra: Any) -> dict[str, Any]:
        """The job description saved with every checkpoint (what a resume reads back), credentials masked."""
        return {
            "kind": kind,
            "config": cfg.model_dump(mode="json"),
            "recipe": self.recipe.model_dump(mode="json"),
            "tracking_uri": redact_userinfo(tracker.uri),
            "mlflow_run_id": tracker.run_id,
            **extra,
        }

    def worker_spec(
        self,
        task: Task,
        optim: OptimConfig,
        models: list[ModelSpec],
        epochs: int,
        on_step: StepCallback | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
    ) -> WorkerSpec:
        """The workers' spec: the models in training order and the job's settings."""
        return WorkerSpec.from_config(
            task,
            optim,
            models,
            self.run_url,
            epochs,
            self.stream.batch_size,
            self.train,
            resume_from=self.resume.folder if self.resume else None,
            on_step=on_step,
            patience=patience,
            min_delta=min_delta,
        )

    @contextlib.contextmanager
    def failing(self, trackers: Sequence[RunTracker]) -> Iterator[None]:
        """Mark `trackers` FAILED if the body raises; drop the resume scratch folder either way."""
        try:
            yield
        except Exception:
            for tracker in trackers:
                tracker.finish("FAILED")
            raise
        finally:
            self.scratch.cleanup()

    def fit(self, spec: WorkerSpec, datasets: dict[str, Any]) -> Any:
        """Run the workers on Ray Train; returns its ``Result``."""
        return fit(spec, datasets, self.train, self.runs, self.run_name)
