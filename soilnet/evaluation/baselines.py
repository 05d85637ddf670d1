"""Tree baselines evaluated with spatial cross-validation.

Random forest, gradient boosting and a linear model (ridge on standardised features) on the
centre-pixel band values (or any pixel features, such as `soilnet.evaluation.context`) plus the climate series
(summarised per variable and/or flattened), as the reference code's baselines, and a random
forest on any given feature matrix (frozen self-supervised features, Tresson et al.). Each
model is refitted once per fold on the other folds' rows only; missing feature values (clouded
centre pixels, missing months) are imputed with medians of those training rows, so nothing of the
test fold shapes the fit. The out-of-fold predictions are scored with `soilnet.evaluation.metrics`.

A categorical target (class codes, with its vocabulary) gets a random forest classifier on the same
features and folds, MISO's baseline by default (253 trees, scikit-learn's other defaults); its
out-of-fold class probabilities cover the whole vocabulary (0 for a class missing from a fold's
training rows) and are scored with `soilnet.evaluation.classification`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import Field, field_validator
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from soilnet.configbase import StrictModel
from soilnet.evaluation.classification import ClassScores, per_fold_classification
from soilnet.evaluation.conformal import calibrate, held_out_table
from soilnet.evaluation.metrics import per_fold_metrics

log = logging.getLogger(__name__)

BaselineModel = Literal["random_forest", "gradient_boosting", "linear"]
ClimateFeatures = Literal["none", "summary", "series", "summary+series"]


class RandomForestConfig(StrictModel):
    """Random forest settings (defaults: the reference baseline)."""

    n_estimators: int = Field(300, ge=1, description="Number of trees.")
    max_depth: int | None = Field(10, ge=1, description="Maximum tree depth; null for unlimited.")
    min_samples_leaf: int = Field(20, ge=1, description="Minimum number of samples in a leaf.")
    max_features: float = Field(1.0, gt=0.0, le=1.0, description="Fraction of the features considered at each split.")


class RandomForestClassifierConfig(StrictModel):
    """Random forest classifier of categorical targets (defaults: MISO's baseline, 253 trees)."""

    n_estimators: int = Field(253, ge=1, description="Number of trees.")
    max_depth: int | None = Field(None, ge=1, description="Maximum tree depth; null for unlimited.")
    min_samples_leaf: int = Field(1, ge=1, description="Minimum number of samples in a leaf.")
    max_features: float | Literal["sqrt", "log2"] = Field(
        "sqrt", description="Features considered at each split: a fraction, or sqrt / log2 of their number."
    )
    class_weight: Literal["balanced"] | None = Field(
        None, description="'balanced': weight classes inversely to their frequency in the training rows."
    )


class LinearConfig(StrictModel):
    """The linear baseline: ridge regression on standardised features, its penalty chosen by inner CV."""

    alphas: list[float] = Field(
        default_factory=lambda: [10.0**e for e in range(-3, 4)],
        min_length=1,
        description="Ridge penalties tried (efficient leave-one-out CV on the training rows of each fold).",
    )


class GradientBoostingConfig(StrictModel):
    """Histogram gradient boosting settings."""

    max_iter: int = Field(300, ge=1, description="Number of boosting iterations (trees).")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0, description="Shrinkage of each tree.")
    max_depth: int | None = Field(6, ge=1, description="Maximum tree depth; null for unlimited.")
    min_samples_leaf: int = Field(20, ge=1, description="Minimum number of samples in a leaf.")
    l2_regularization: float = Field(0.0, ge=0.0, description="L2 penalty on leaf values.")


class BaselineConfig(StrictModel):
    """Tree baselines of the evaluation: which models, which features, how many threads."""

    models: list[BaselineModel] = Field(
        default_factory=lambda: ["random_forest", "gradient_boosting"],
        min_length=1,
        description="Baselines fitted on centre pixels + climate.",
    )
    climate_features: ClimateFeatures = Field(
        "summary",
        description="Climate inputs: none; summary (per-variable mean, std, min, max over the "
        "months); series (every month of every variable); or summary+series.",
    )
    seed: int = Field(0, ge=0, description="Seed of the tree models.")
    n_jobs: int = Field(1, ge=-1, description="Threads for fitting and prediction; -1 for all cores (not 0).")
    random_forest: RandomForestConfig = Field(default_factory=RandomForestConfig, description="Random forest settings.")
    gradient_boosting: GradientBoostingConfig = Field(
        default_factory=GradientBoostingConfig, description="Gradient boosting settings."
    )
    linear: LinearConfig = Field(default_factory=LinearConfig, description="Ridge (linear model) settings.")
    classifier: RandomForestClassifierConfig = Field(
        default_factory=RandomForestClassifierConfig,
        description="Random forest classifier, the baseline of categorical targets (same features).",
    )
    interval_levels: list[float] = Field(
        default_factory=lambda: [0.9],
        description="Random forest regressors: split-conformal intervals of these levels, the score normalised "
        "by the spread of the trees' predictions, checked on held-out folds (coverage_<pct>, width_<pct> "
        "columns of the table, as the fine-tuned models'); empty: none.",
    )

    @field_validator("n_jobs")
    @classmethod
    def _nonzero_jobs(cls, value: int) -> int:
        if value == 0:
            raise ValueError("n_jobs must be a positive number of threads or -1, not 0")
        return value

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"models listed more than once: {value}")
        return value


@dataclass(frozen=True)
class CrossValResult:
    """Out-of-fold predictions of one model and its metrics per fold.

    For a categorical target, `predictions` are class probabilities (N, K) and `scores` holds the
    per-class and confusion tables beside the per-fold metrics.
    """

    model: str
    predictions: NDArray[np.float64]
    per_fold: pd.DataFrame
    scores: ClassScores | None = None


def _finite(name: str, values: ArrayLike, ndim: int, missing: bool = False) -> NDArray[np.float64]:
    """`values` as float64 with `ndim` dimensions and no inf, nor NaN unless `missing` (errors name array and row)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    bad = np.argwhere(np.isinf(arr) if missing else ~np.isfinite(arr))
    if bad.size:
        kind = "infinite" if missing else "NaN/infinite"
        raise ValueError(f"{name} has {kind} values, first at index {tuple(bad[0].tolist())}")
    return arr


def centre_pixels(images: ArrayLike) -> NDArray[np.float64]:
    """Band values (N, C) at row and column P // 2 of image windows (N, C, P, P).

    That is the point's own pixel when a window is cut as ``[r - P // 2, r - P // 2 + P)``.
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[2] != arr.shape[3]:
        raise ValueError(f"images must be (N, C, P, P), got shape {arr.shape}")
    half = arr.shape[2] // 2
    return arr[:, :, half, half].astype(np.float64)


def climate_summary(climate: ArrayLike) -> NDArray[np.float64]:
    """Per-variable mean, std, min and max over the months: (N, T, V) -> (N, 4 V).

    Columns are grouped by statistic: the V means, then the V stds, the V minima, the V maxima. Missing
    months (NaN) are left out; a variable with no month at all gives NaN (imputed per fold).
    """
    arr = _finite("climate", climate, 3, missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN, as intended
        return np.concatenate([np.nanmean(arr, 1), np.nanstd(arr, 1), np.nanmin(arr, 1), np.nanmax(arr, 1)], axis=1)


def tabular_features(
    centre: ArrayLike, climate: ArrayLike | None, mode: ClimateFeatures = "summary"
) -> NDArray[np.float64]:
    """Feature matrix of the centre-pixel baselines: band values, then climate features.

    `centre` is (N, C); `climate` is (N, T, V) (ignored, and may be None, when `mode` is
    ``"none"``). Returns (N, C + F) float64; NaN marks a missing value (imputed per fold).
    """
    pixels = _finite("centre pixels", centre, 2, missing=True)
    if mode == "none":
        return pixels
    if climate is None:
        raise ValueError(f"climate_features={mode!r} needs a climate array (N, T, V)")
    series = _finite("climate", climate, 3, missing=True)
    if series.shape[0] != pixels.shape[0]:
        raise ValueError(f"climate has {series.shape[0]} rows but centre pixels have {pixels.shape[0]}")
    parts = [pixels]
    if mode in ("summary", "summary+series"):
        parts.append(climate_summary(series))
    if mode in ("series", "summary+series"):
        parts.append(series.reshape(series.shape[0], -1))
    return np.concatenate(parts, axis=1)


def make_regressor(model: BaselineModel, config: BaselineConfig) -> RegressorMixin:
    """An unfitted scikit-learn regressor for a baseline name, seeded from `config`."""
    if model == "random_forest":
        rf = config.random_forest
        return RandomForestRegressor(
            n_estimators=rf.n_estimators,
            max_depth=rf.max_depth,
            min_samples_leaf=rf.min_samples_leaf,
            max_features=rf.max_features,
            random_state=config.seed,
            n_jobs=config.n_jobs,
        )
    if model == "gradient_boosting":
        gb = config.gradient_boosting
        return HistGradientBoostingRegressor(
            max_iter=gb.max_iter,
            learning_rate=gb.learning_rate,
            max_depth=gb.max_depth,
            min_samples_leaf=gb.min_samples_leaf,
            l2_regularization=gb.l2_regularization,
            early_stopping=False,
            random_state=config.seed,
        )
    if model == "linear":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=config.linear.alphas))
    raise ValueError(f"unknown baseline model {model!r}; use random_forest, gradient_boosting or linear")


def make_classifier(config: BaselineConfig) -> RandomForestClassifier:
    """The unfitted random forest classifier of categorical targets, seeded from `config`."""
    rf = config.classifier
    return RandomForestClassifier(
        n_estimators=rf.n_estimators,
        max_depth=rf.max_depth,
        min_samples_leaf=rf.min_samples_leaf,
        max_features=rf.max_features,
        class_weight=rf.class_weight,
        random_state=config.seed,
        n_jobs=config.n_jobs,
    )


def fold_fits(
    estimator: BaseEstimator, x: NDArray[np.float64], y: np.ndarray, folds: np.ndarray, model: str
) -> Iterator[tuple[np.ndarray, BaseEstimator]]:
    """(test mask, fitted model) per fold: a clone of `estimator` behind a median imputer, fitted on the
    other folds' rows only. Checks that rows match and that there are at least 2 integer folds."""
    if folds.ndim != 1 or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"fold_ids must be a 1-D integer array, got {folds.dtype} {folds.shape}")
    if not x.shape[0] == y.shape[0] == folds.shape[0]:
        raise ValueError(f"row counts differ: features {x.shape[0]}, targets {y.shape[0]}, fold_ids {folds.shape[0]}")
    unique = np.unique(folds)
    if unique.size < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {unique.tolist()}")
    for fold in unique:
        test = folds == fold
        imputed = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), clone(estimator))
        fitted = imputed.fit(x[~test], y[~test])
        log.info("%s: fold %d fitted on %d rows, predicting %d", model, fold, (~test).sum(), test.sum())
        yield test, fitted


def tree_spread(fitted: BaseEstimator, x: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Std of the trees' predictions of `x` for a fitted random forest pipeline; None for any other model."""
    forest = fitted[-1]
    if not isinstance(forest, RandomForestRegressor):
        return None
    inputs = fitted[:-1].transform(x)
    return np.std([tree.predict(inputs) for tree in forest.estimators_], axis=0)


def cross_validate(
    estimator: RegressorMixin,
    features: ArrayLike,
    targets: ArrayLike,
    fold_ids: ArrayLike,
    model: str,
    target: str = "",
    levels: Sequence[float] = (),
) -> CrossValResult:
    """Fit a clone of `estimator` per fold on the other folds' rows; score out-of-fold.

    `features` (N, F) may hold NaN (missing): each fold's model imputes them with the medians of its
    own training rows. `targets` (N,), `fold_ids` (N,) integers with at least 2 folds. Rows of the test
    fold never reach ``fit``, nor the imputation. `target` names the target in the per-fold table. A random
    forest with `levels` also gets split-conformal intervals (`soilnet.evaluation.conformal`; score
    |residual| / spread of its trees) and their held-out ``coverage_<pct>`` / ``width_<pct>`` per fold.
    """
    x = _finite("features", features, 2, missing=True)
    y = _finite("targets", targets, 1)
    folds = np.asarray(fold_ids)
    predictions, spread = np.full(y.shape[0], np.nan), np.full(y.shape[0], np.nan)
    for test, fitted in fold_fits(estimator, x, y, folds, model):
        predictions[test] = fitted.predict(x[test])
        trees = tree_spread(fitted, x[test]) if levels else None
        spread[test] = np.nan if trees is None else trees
    per_fold = per_fold_metrics(y, predictions, folds, model, target)
    if levels and np.isfinite(spread).all():
        cal = calibrate(y, predictions, spread, folds, list(levels))
        per_fold = per_fold.merge(held_out_table(cal, y, predictions, spread, folds).drop(columns="n"), on="fold")
    return CrossValResult(model, predictions, per_fold)


def class_codes(name: str, codes: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """Class codes (N,) as int64, checked to be whole numbers in [0, `n_classes`) (errors name the row)."""
    values = _finite(name, codes, 1)
    bad = np.flatnonzero((values != np.round(values)) | (values < 0) | (values >= n_classes))
    if bad.size:
        raise ValueError(f"{name} has {values[bad[0]]:g} at row {bad[0]}, not a class code in [0, {n_classes})")
    return values.astype(np.int64)


def cross_validate_classifier(
    estimator: ClassifierMixin,
    features: ArrayLike,
    codes: ArrayLike,
    fold_ids: ArrayLike,
    model: str,
    target: str,
    classes: Sequence[str],
) -> CrossValResult:
    """`cross_validate` for a categorical target: class codes (N,) into the vocabulary `classes`.

    The predictions are out-of-fold class probabilities (N, K) over the whole vocabulary: a class that
    none of a fold's training rows has gets probability 0 in that fold.
    """
    x = _finite("features", features, 2, missing=True)
    y = class_codes("class codes", codes, len(classes))
    folds = np.asarray(fold_ids)
    proba = np.full((y.shape[0], len(classes)), np.nan)
    for test, fitted in fold_fits(estimator, x, y, folds, model):
        proba[test] = 0.0
        proba[np.ix_(test, fitted.classes_)] = fitted.predict_proba(x[test])
    scores = per_fold_classification(y, proba, folds, model, target, classes)
    return CrossValResult(model, proba, scores.per_fold, scores)


def evaluate_baselines(
    centre: ArrayLike,
    climate: ArrayLike | None,
    targets: ArrayLike,
    fold_ids: ArrayLike,
    config: BaselineConfig,
    target: str = "",
    classes: Sequence[str] | None = None,
) -> list[CrossValResult]:
    """Cross-validate the baselines on centre pixels (N, C) + climate (N, T, V).

    A continuous target gets every configured regressor; a categorical one (`classes` given, `targets`
    its class codes) the random forest classifier, named ``random_forest`` in its table.
    """
    features = tabular_features(centre, climate, config.climate_features)
    limit = None if config.n_jobs == -1 else config.n_jobs
    with threadpool_limits(limits=limit):
        if classes is not None:
            classifier = make_classifier(config)
            return [
                cross_validate_classifier(classifier, features, targets, fold_ids, "random_forest", target, classes)
            ]
        return [
            cross_validate(
                make_regressor(name, config), features, targets, fold_ids, name, target, config.interval_levels
            )
            for name in config.models
        ]


def evaluate_feature_forest(
    features: ArrayLike,
    targets: ArrayLike,
    fold_ids: ArrayLike,
    config: BaselineConfig,
    model: str = "random_forest_ssl_features",
    target: str = "",
    classes: Sequence[str] | None = None,
) -> CrossValResult:
    """Cross-validate the configured random forest on a given feature matrix (N, F).

    For frozen self-supervised features; they must come from an encoder that never saw the
    test areas' labels. With `classes` (a categorical target, `targets` its class codes) the forest
    is the random forest classifier.
    """
    limit = None if config.n_jobs == -1 else config.n_jobs
    with threadpool_limits(limits=limit):
        if classes is not None:
            classifier = make_classifier(config)
            return cross_validate_classifier(classifier, features, targets, fold_ids, model, target, classes)
        forest = make_regressor("random_forest", config)
        return cross_validate(forest, features, targets, fold_ids, model, target, config.interval_levels)
