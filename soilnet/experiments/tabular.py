"""The baseline arms: scikit-learn models on features of the same windows the deep arms read.

The windows of every labelled point are read once per experiment (in chunks, so memory holds the
features, not the windows): the centre pixel, the multi-scale context (per band mean and std over
``experiment.context_windows``) and the climate series. Each baseline arm then cross-validates its
model on the experiment's folds with `soilnet.evaluation.baselines.cross_validate`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from soilnet.evaluation.baselines import (
    BaselineConfig,
    CrossValResult,
    centre_pixels,
    cross_validate,
    make_regressor,
    tabular_features,
)
from soilnet.evaluation.context import context_features
from soilnet.evaluation.design import BaselineArm
from soilnet.training.samples import CubeSource

log = logging.getLogger(__name__)

CHUNK = 512


@dataclass(frozen=True)
class WindowFeatures:
    """Per point: centre pixel (N, C), context statistics (N, 2 C W) and climate series (N, T, V)."""

    centre: np.ndarray
    context: np.ndarray
    climate: np.ndarray
    windows: list[int]

    @classmethod
    def read(cls, source: CubeSource, table: pd.DataFrame, windows: list[int]) -> WindowFeatures:
        """Read the windows of `table`'s rows chunk by chunk and keep their features."""
        centre, context, climate = [], [], []
        for start in range(0, len(table), CHUNK):
            batch = source.read(table.iloc[start : start + CHUNK])
            centre.append(centre_pixels(batch["image"]))
            context.append(context_features(batch["image"], windows))
            climate.append(np.asarray(batch["climate"], dtype=np.float64))
        log.info("baseline features of %d points (%d context windows)", len(table), len(windows))
        return cls(np.concatenate(centre), np.concatenate(context), np.concatenate(climate), list(windows))

    def matrix(self, arm: BaselineArm, ssl: np.ndarray | None = None) -> np.ndarray:
        """The feature matrix of a baseline arm: its pixel features, then its climate features."""
        if arm.inputs == "ssl_features":
            if ssl is None:
                raise ValueError(f"baseline inputs ssl_features need the features of arm {arm.encoders_from!r}")
            pixels = ssl
        else:
            pixels = self.centre if arm.inputs == "centre" else self.context
        return tabular_features(pixels, self.climate, arm.climate)


def run_baseline(
    name: str, arm: BaselineArm, features: np.ndarray, table: pd.DataFrame, config: BaselineConfig, seed: int
) -> CrossValResult:
    """Cross-validate a baseline arm (seeded with `seed`) on the folds of `table`."""
    seeded = config.model_copy(update={"seed": seed})
    estimator = make_regressor(arm.model, seeded)
    limit = None if config.n_jobs == -1 else config.n_jobs
    with threadpool_limits(limits=limit):
        return cross_validate(estimator, features, table["target"].to_numpy(np.float64), table["fold"].to_numpy(), name)
