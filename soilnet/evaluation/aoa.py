"""Area of applicability (AOA) after Meyer & Pebesma (2021), "Predicting into unknown space?".

A prediction location is described by a feature vector: for a deep model, the fused embedding the
fine-tuned encoders hand to the head; for a random forest, its covariates. Features are standardised
with the training points' mean and standard deviation and multiplied by a weight per feature (its
importance, scaled so the largest weight is 1; `importance_weights`, `linear_importance`).

- DI (dissimilarity index) of a location = distance to the nearest training point in that weighted
  space / the mean distance between training points (all pairs).
- The threshold is the outlier-removed maximum of the cross-validated DI of the training points:
  each training point's distance to the nearest training point of the OTHER spatial folds (the same
  folds as the model's cross-validation), divided by the same mean distance; values above
  Q3 + 1.5 IQR are outliers (quartiles by linear interpolation; CAST takes R's boxplot whisker).
- AOA = DI <= threshold.

Nearest neighbours come from scikit-learn's BallTree (robust in the 10-100 dimensions of embeddings);
the mean pairwise distance is summed chunk by chunk, so no n x n matrix is held. An `AOAReference`
holds everything a map job needs (saved as one ``.npz``); its tree is built once per process.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import pairwise_distances_chunked
from sklearn.neighbors import BallTree

from soilnet import storage

log = logging.getLogger(__name__)

#: Tukey's fence: cross-validated DI above Q3 + IQR_FENCE * IQR are outliers when setting the threshold.
IQR_FENCE = 1.5


def _matrix(features: ArrayLike, name: str, width: int | None = None) -> NDArray[np.float64]:
    """Validated finite (n, d) float64 features."""
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
        expected = f"(n, {width})" if width is not None else "(n, d)"
        raise ValueError(f"{name} must be {expected}, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise ValueError(f"{name} has NaN/infinite values in {bad.size} row(s), first row {bad[0]}")
    return arr


def importance_weights(importances: ArrayLike) -> NDArray[np.float64]:
    """Feature weights from importances (e.g. a forest's ``feature_importances_``), scaled to a maximum of 1."""
    values = np.asarray(importances, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"importances must be a non-empty 1-D array of finite values >= 0, got {values}")
    if values.max() == 0:
        raise ValueError("every importance is 0: no feature carries weight")
    return values / values.max()


def linear_importance(weight: ArrayLike, feature_std: ArrayLike) -> NDArray[np.float64]:
    """Importance of each input of a linear layer (out, in) on standardised inputs: ||W[:, j]|| * std_j, max 1.

    A standardised feature j moves the layer's output by W[:, j] * std_j per unit, so this is the layer's
    sensitivity to it (the deep model's stand-in for a forest's variable importance).
    """
    w = np.asarray(weight, dtype=np.float64)
    std = np.asarray(feature_std, dtype=np.float64)
    if w.ndim != 2 or std.shape != (w.shape[1],):
        raise ValueError(f"weight (out, in) {w.shape} and feature_std {std.shape} do not match")
    return importance_weights(np.linalg.norm(w, axis=0) * std)


def mean_pairwise_distance(space: ArrayLike) -> float:
    """Mean Euclidean distance over all pairs i != j of the rows of `space` (chunked, no n x n matrix)."""
    points = _matrix(space, "space")
    n = points.shape[0]
    if n < 2:
        raise ValueError(f"the mean distance between training points needs at least 2 points, got {n}")
    total = sum(float(chunk.sum()) for chunk in pairwise_distances_chunked(points, metric="euclidean"))
    return total / (n * (n - 1))


def cross_validated_di(space: ArrayLike, folds: ArrayLike, mean_distance: float) -> NDArray[np.float64]:
    """DI of each training point to the nearest training point of the other folds."""
    points = _matrix(space, "space")
    fold_ids = np.asarray(folds)
    if fold_ids.shape != (points.shape[0],):
        raise ValueError(f"folds has shape {fold_ids.shape}, expected ({points.shape[0]},) like the features")
    ids = np.unique(fold_ids)
    if ids.size < 2:
        raise ValueError(f"cross-validated DI needs at least 2 folds, got {ids.tolist()}")
    di = np.empty(points.shape[0])
    for fold in ids:
        held_out = fold_ids == fold
        distance, _ = BallTree(points[~held_out]).query(points[held_out], k=1)
        di[held_out] = distance[:, 0] / mean_distance
    return di


def aoa_threshold(train_di: ArrayLike) -> float:
    """The largest cross-validated DI that is not an outlier (<= Q3 + 1.5 IQR)."""
    values = np.asarray(train_di, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"train_di must be a non-empty 1-D array of finite values, got shape {values.shape}")
    q1, q3 = np.percentile(values, [25.0, 75.0])
    fence = q3 + IQR_FENCE * (q3 - q1)
    return float(values[values <= fence].max())


@dataclass
class AOAReference:
    """The training points in the weighted standardised space, with the DI scale and the AOA threshold."""

    space: NDArray[np.float64]
    center: NDArray[np.float64]
    scale: NDArray[np.float64]
    weights: NDArray[np.float64]
    mean_distance: float
    threshold: float
    train_di: NDArray[np.float64]
    _tree: BallTree | None = field(default=None, repr=False, compare=False)

    @property
    def n_features(self) -> int:
        """Width of the feature vectors this reference takes."""
        return int(self.center.size)

    def transform(self, features: ArrayLike) -> NDArray[np.float64]:
        """Features (n, d) in the weighted standardised space."""
        raw = _matrix(features, "features", self.n_features)
        return (raw - self.center) / self.scale * self.weights

    def dissimilarity(self, features: ArrayLike) -> NDArray[np.float64]:
        """DI (n,) of feature vectors (n, d): nearest training point distance / mean training distance."""
        if self._tree is None:
            self._tree = BallTree(self.space)
        distance, _ = self._tree.query(self.transform(features), k=1)
        return distance[:, 0] / self.mean_distance

    def inside(self, di: ArrayLike) -> NDArray[np.bool_]:
        """True where DI is within the threshold (inside the area of applicability)."""
        return np.asarray(di, dtype=np.float64) <= self.threshold


def fit_aoa(features: ArrayLike, folds: ArrayLike, weights: ArrayLike | None = None) -> AOAReference:
    """The AOA reference of training features (n, d) with their spatial fold ids; `weights` default to 1."""
    raw = _matrix(features, "training features")
    center = raw.mean(axis=0)
    std = raw.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    w = np.ones(raw.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (raw.shape[1],) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be {raw.shape[1]} finite values >= 0, got shape {w.shape}")
    space = (raw - center) / scale * w
    mean_distance = mean_pairwise_distance(space)
    if mean_distance == 0:
        raise ValueError("every training point has the same features: DI is undefined")
    train_di = cross_validated_di(space, folds, mean_distance)
    threshold = aoa_threshold(train_di)
    log.info(
        "AOA of %d training points in %d features: mean distance %.3g, threshold DI %.3f",
        raw.shape[0], raw.shape[1], mean_distance, threshold,
    )  # fmt: skip
    return AOAReference(space, center, scale, w, mean_distance, threshold, train_di)


def save_aoa(reference: AOAReference, url: str | os.PathLike[str]) -> str:
    """Write a reference as one ``.npz`` (local or s3://); returns the URL."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        space=reference.space,
        center=reference.center,
        scale=reference.scale,
        weights=reference.weights,
        mean_distance=np.float64(reference.mean_distance),
        threshold=np.float64(reference.threshold),
        train_di=reference.train_di,
    )
    where = os.fspath(url)
    with storage.open_file(where, "wb") as f:
        f.write(buf.getvalue())
    return where


def load_aoa(url: str | os.PathLike[str]) -> AOAReference:
    """Read a reference written by `save_aoa`; errors name the file and the missing array."""
    where = os.fspath(url)
    with storage.open_file(where, "rb") as f:
        arrays = np.load(io.BytesIO(f.read()))
    names = ("space", "center", "scale", "weights", "mean_distance", "threshold", "train_di")
    missing = [n for n in names if n not in arrays.files]
    if missing:
        raise ValueError(f"{where}: not an AOA reference, arrays {missing} are missing")
    return AOAReference(
        space=arrays["space"],
        center=arrays["center"],
        scale=arrays["scale"],
        weights=arrays["weights"],
        mean_distance=float(arrays["mean_distance"]),
        threshold=float(arrays["threshold"]),
        train_di=arrays["train_di"],
    )
