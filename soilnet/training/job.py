"""The inputs of a training job: cubes, recipe shapes fitted to them, sample sources, resume folders, its run."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from soilnet import storage
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.folds import FoldConfig
from soilnet.data.locations import labelled_locations, unlabelled_locations
from soilnet.data.normalisation import NormStats, fit_normalisation
from soilnet.data.points import read_points
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.recipes.recipe import RecipeConfig, load_recipe
from soilnet.redaction import usable_uri
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import TrainConfig
from soilnet.training.samples import CachedSource, CubeSource
from soilnet.training.state import read_job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CubeInputs:
    """The cubes of a job and what their bands and variables are."""

    raster: str
    climate: str
    bands: list[str]
    variables: list[str]

    @classmethod
    def open(cls, data: DataConfig) -> CubeInputs:
        """Open the configured raster and climate cubes (metadata only)."""
        raster, climate = data.url("raster"), data.url("climate")
        bands = list(open_raster_cube(raster).band_names)
        return cls(raster, climate, bands, list(open_climate_cube(climate).variables))


def fit_recipe(recipe_url: str, inputs: CubeInputs, stream: StreamConfig) -> tuple[RecipeConfig, StreamConfig]:
    """The recipe with band and variable counts of the cubes, and the stream with the recipe's patch and months."""
    recipe = load_recipe(recipe_url)
    n_bands = len(inputs.bands) + int(stream.mask_channel)
    data = recipe.data.model_copy(update={"n_bands": n_bands, "n_climate_vars": len(inputs.variables)})
    recipe = recipe.model_copy(update={"data": data})
    stream = stream.model_copy(update={"patch_px": recipe.data.patch_px, "months": recipe.data.n_months})
    return RecipeConfig.model_validate(recipe.model_dump()), stream


def labelled_table(data: DataConfig, target: str, folds: FoldConfig) -> pd.DataFrame:
    """The labelled locations of the points table with their spatial fold ids."""
    points, _ = read_points(data.url("points"), targets=[target])
    return labelled_locations(points, target, folds)


def unlabelled_table(inputs: CubeInputs, stream: StreamConfig, exclude: pd.DataFrame) -> pd.DataFrame:
    """Unlabelled locations away from every labelled point of `exclude` (label-free, test-free)."""
    xy = exclude[["x", "y"]].to_numpy() if len(exclude) else None
    table = unlabelled_locations(open_raster_cube(inputs.raster), stream, xy)
    if len(table) == 0:
        raise ValueError("no unlabelled location survived the buffer and masks: lower stream.buffer_px")
    return table


def make_source(
    train: TrainConfig, inputs: CubeInputs, stream: StreamConfig, table: pd.DataFrame
) -> CubeSource | CachedSource:
    """The configured sample source for the rows of `table`."""
    if train.data_source == "cache":
        return CachedSource(inputs.raster, inputs.climate, stream, table)
    return CubeSource(inputs.raster, inputs.climate, stream)


def input_stats(
    source: CubeSource | CachedSource, table: pd.DataFrame, inputs: CubeInputs, method: str, seed: int
) -> NormStats:
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


def job_run(
    resume: Resume | None,
    tracking: TrackingConfig,
    workspace: str,
    run_name: str,
    kind: str,
    params: dict[str, Any],
    config_text: str | None = None,
) -> RunTracker:
    """The job's MLflow run: the run stored with a resumed checkpoint, else a new run with the job's parameters."""
    if resume is not None:
        return RunTracker.for_run(
            tracking, workspace, resume.job["mlflow_run_id"], usable_uri(resume.job["tracking_uri"])
        )
    tracker = RunTracker.start(tracking, workspace, run_name, tags={"soilnet.job": kind})
    tracker.log_params(params)
    if config_text:
        tracker.log_text(config_text, "config.yaml")
    return tracker
