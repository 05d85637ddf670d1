"""Split-conformal prediction intervals with a normalised score, calibrated per spatial fold.

Each labelled point i has an out-of-fold prediction p_i (the model that did not see its fold) and a
spread sigma_i (the fold ensemble's standard deviation at the point, the same quantity the map has at
every pixel). Its score is s_i = |y_i - p_i| / max(sigma_i, floor), the floor being
`SIGMA_FLOOR_FRACTION` of the median positive spread (kept with the calibration, so maps divide by
the same). For a level L and n scores, the conformal quantile is the ceil((n + 1) L)-th smallest score
(+inf when that exceeds n), and the interval at a location is prediction -/+ q * max(sigma, floor).

- Held-out check: the points of fold k get the quantile of the scores of the OTHER folds, so every
  point is judged with an interval calibrated without its fold; coverage and width per fold follow.
- Maps: the quantile of all out-of-fold scores (`IntervalCalibration.quantiles`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from soilnet import storage

#: Spreads below this fraction of the median positive spread are raised to it (no division by ~0).
SIGMA_FLOOR_FRACTION = 0.01
#: Nominal levels of the reliability diagram.
RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def level_name(level: float) -> str:
    """The percent suffix of a level's layers and columns: 0.9 -> ``90``, 0.975 -> ``97.5``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie strictly between 0 and 1, got {level}")
    return f"{round(level * 100, 6):g}"


def _vectors(y: ArrayLike, pred: ArrayLike, sigma: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    arrays = [np.asarray(a, dtype=np.float64) for a in (y, pred, sigma)]
    shape = arrays[0].shape
    for name, arr in zip(("y", "pred", "sigma"), arrays, strict=True):
        if arr.ndim != 1 or arr.shape != shape:
            raise ValueError(f"{name} must be 1-D of the same length as y {shape}, got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"{name} has NaN/infinite values, first at row {bad[0]}")
    if (arrays[2] < 0).any():
        raise ValueError(f"sigma has negative values, first at row {np.flatnonzero(arrays[2] < 0)[0]}")
    return tuple(arrays)


def sigma_floor(sigma: ArrayLike) -> float:
    """The smallest spread a score divides by: a fraction of the median positive spread (1 if none is)."""
    values = np.asarray(sigma, dtype=np.float64)
    positive = values[values > 0]
    return float(SIGMA_FLOOR_FRACTION * np.median(positive)) if positive.size else 1.0


def normalised_scores(y: ArrayLike, pred: ArrayLike, sigma: ArrayLike, floor: float) -> NDArray[np.float64]:
    """|y - pred| / max(sigma, floor)."""
    obs, p, s = _vectors(y, pred, sigma)
    return np.abs(obs - p) / np.maximum(s, floor)


def conformal_quantile(scores: ArrayLike, level: float) -> float:
    """The ceil((n + 1) level)-th smallest score (finite-sample split-conformal), +inf beyond n scores."""
    level_name(level)
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"conformal quantile needs a non-empty 1-D array of scores, got shape {values.shape}")
    rank = math.ceil((values.size + 1) * level)
    return float(values[rank - 1]) if rank <= values.size else math.inf


@dataclass
class IntervalCalibration:
    """Conformal quantiles of one target: pooled (for maps) and per held-out fold (for the coverage check)."""

    levels: list[float]
    floor: float
    quantiles: dict[str, float]
    fold_quantiles: dict[str, dict[str, float]] = field(default_factory=dict)

    def quantile(self, level: float, fold: int | None = None) -> float:
        """The quantile of a level: the pooled one, or the one calibrated without `fold`."""
        table = self.quantiles if fold is None else self.fold_quantiles[str(fold)]
        return table[level_name(level)]

    def bounds(
        self, pred: ArrayLike, sigma: ArrayLike, level: float, fold: int | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lower and upper interval bounds at predictions with spreads (NaN stays NaN)."""
        p = np.asarray(pred, dtype=np.float64)
        half = self.quantile(level, fold) * np.maximum(np.asarray(sigma, dtype=np.float64), self.floor)
        return p - half, p + half


def calibrate(
    y: ArrayLike, pred: ArrayLike, sigma: ArrayLike, folds: ArrayLike, levels: list[float]
) -> IntervalCalibration:
    """Quantiles of every level from out-of-fold predictions: pooled, and leaving each fold out."""
    obs, p, s = _vectors(y, pred, sigma)
    fold_ids = np.asarray(folds)
    if fold_ids.shape != obs.shape:
        raise ValueError(f"folds has shape {fold_ids.shape}, expected {obs.shape} like y")
    floor = sigma_floor(s)
    scores = normalised_scores(obs, p, s, floor)
    names = [level_name(level) for level in levels]
    pooled = {name: conformal_quantile(scores, level) for name, level in zip(names, levels, strict=True)}
    per_fold = {}
    for fold in np.unique(fold_ids):
        others = scores[fold_ids != fold]
        if others.size == 0:
            raise ValueError(f"fold {fold} holds every point: per-fold calibration needs at least 2 folds")
        per_fold[str(fold)] = {n: conformal_quantile(others, lv) for n, lv in zip(names, levels, strict=True)}
    return IntervalCalibration(list(levels), floor, pooled, per_fold)


def held_out_bounds(
    cal: IntervalCalibration, pred: ArrayLike, sigma: ArrayLike, folds: ArrayLike, level: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bounds of each point from the quantile calibrated without its own fold."""
    p = np.asarray(pred, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    fold_ids = np.asarray(folds)
    lower, upper = np.empty_like(p), np.empty_like(p)
    for fold in np.unique(fold_ids):
        rows = fold_ids == fold
        lower[rows], upper[rows] = cal.bounds(p[rows], s[rows], level, int(fold))
    return lower, upper


def interval_metrics(
    cal: IntervalCalibration, y: ArrayLike, pred: ArrayLike, sigma: ArrayLike, folds: ArrayLike, level: float
) -> pd.DataFrame:
    """Held-out coverage and mean width per fold: columns ``fold``, ``coverage_<pct>``, ``width_<pct>``."""
    obs, p, s = _vectors(y, pred, sigma)
    fold_ids = np.asarray(folds)
    lower, upper = held_out_bounds(cal, p, s, fold_ids, level)
    covered = (obs >= lower) & (obs <= upper)
    pct = level_name(level)
    frame = pd.DataFrame({"fold": fold_ids, "covered": covered, "width": upper - lower})
    per_fold = frame.groupby("fold", sort=True).agg(coverage=("covered", "mean"), width=("width", "mean"))
    return per_fold.rename(columns={"coverage": f"coverage_{pct}", "width": f"width_{pct}"}).reset_index()


def held_out_table(
    cal: IntervalCalibration, y: ArrayLike, pred: ArrayLike, sigma: ArrayLike, folds: ArrayLike
) -> pd.DataFrame:
    """Held-out coverage and width of every calibrated level per fold: ``fold, n, coverage_<pct>, width_<pct>, ...``."""
    fold_ids = np.asarray(folds)
    counts = pd.Series(fold_ids).value_counts().sort_index()
    frame = pd.DataFrame({"fold": counts.index.to_numpy(), "n": counts.to_numpy()})
    for level in cal.levels:
        frame = frame.merge(interval_metrics(cal, y, pred, sigma, fold_ids, level), on="fold")
    return frame


def coverage_by_aoa(
    cal: IntervalCalibration,
    y: ArrayLike,
    pred: ArrayLike,
    sigma: ArrayLike,
    folds: ArrayLike,
    inside: ArrayLike,
    level: float,
) -> dict[str, float]:
    """Held-out coverage inside and outside the AOA, with the point counts (NaN coverage where none)."""
    obs, p, s = _vectors(y, pred, sigma)
    mask = np.asarray(inside, dtype=bool)
    if mask.shape != obs.shape:
        raise ValueError(f"inside has shape {mask.shape}, expected {obs.shape} like y")
    lower, upper = held_out_bounds(cal, p, s, folds, level)
    covered = (obs >= lower) & (obs <= upper)
    pct = level_name(level)
    return {
        f"coverage_{pct}_inside_aoa": float(covered[mask].mean()) if mask.any() else math.nan,
        f"coverage_{pct}_outside_aoa": float(covered[~mask].mean()) if (~mask).any() else math.nan,
        "n_inside_aoa": int(mask.sum()),
        "n_outside_aoa": int((~mask).sum()),
    }


def reliability(
    y: ArrayLike, pred: ArrayLike, sigma: ArrayLike, folds: ArrayLike, levels: tuple[float, ...] = RELIABILITY_LEVELS
) -> pd.DataFrame:
    """Observed held-out coverage at each nominal level: columns ``nominal``, ``observed``."""
    obs, p, s = _vectors(y, pred, sigma)
    cal = calibrate(obs, p, s, folds, list(levels))
    rows = []
    for level in levels:
        lower, upper = held_out_bounds(cal, p, s, folds, level)
        rows.append({"nominal": level, "observed": float(((obs >= lower) & (obs <= upper)).mean())})
    return pd.DataFrame(rows)


def save_calibrations(calibrations: dict[str, IntervalCalibration], url: str | os.PathLike[str]) -> str:
    """Write the calibration of every target as JSON ({target: calibration}); returns the URL."""
    where = os.fspath(url)
    with storage.open_file(where, "w") as f:
        json.dump({t: asdict(c) for t, c in calibrations.items()}, f, indent=2)
    return where


def load_calibrations(url: str | os.PathLike[str]) -> dict[str, IntervalCalibration]:
    """Read calibrations written by `save_calibrations`; errors name the file and the target."""
    where = os.fspath(url)
    with storage.open_file(where, "r") as f:
        tree = json.load(f)
    out = {}
    for target, fields in tree.items():
        try:
            out[target] = IntervalCalibration(**fields)
        except TypeError as exc:
            raise ValueError(f"{where}: calibration of {target!r} is invalid: {exc}") from exc
    return out
