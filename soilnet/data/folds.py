"""Spatial cross-validation folds of labelled points, and train / validation / test splits.

Random splits over-state accuracy for spatially auto-correlated soil data, so points are
grouped into folds by location: K-means clusters of the coordinates (Tresson et al., K = 6)
or square blocks of a fixed grid assigned to folds. Early stopping uses a validation set
cut, as a compact spatial group, out of the training folds; the test fold is never touched.
Coordinates are ``x`` / ``y`` in the cube CRS (metres, equal-area).
"""

from __future__ import annotations

import logging
import math
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field
from sklearn.cluster import KMeans

from soilnet.configbase import StrictModel

log = logging.getLogger(__name__)


class FoldConfig(StrictModel):
    """How labelled points are split into spatial cross-validation folds."""

    method: Literal["kmeans", "blocks"] = Field(
        "kmeans",
        description="kmeans: K-means clusters of the point coordinates (Tresson et al.); "
        "blocks: square grid blocks of block_size_m assigned to folds, balanced by point count.",
    )
    k: int = Field(6, ge=2, le=100, description="Number of folds (6 as in Tresson et al.).")
    block_size_m: float = Field(50_000.0, gt=0, description="Side of a grid block in metres (method=blocks only).")
    seed: int = Field(0, ge=0, description="Seed of the fold assignment and validation split.")
    val_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=0.5,
        description="Fraction of the training points held out, as one compact spatial group, "
        "for validation and early stopping (never taken from the test fold).",
    )


class FoldSplit(NamedTuple):
    """Row indices of one cross-validation round; disjoint and sorted."""

    train: NDArray[np.int64]
    val: NDArray[np.int64]
    test: NDArray[np.int64]


def _coordinates(x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
    """Stack validated coordinates into an (n, 2) array."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.ndim != 1 or ys.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {xs.shape} and {ys.shape}")
    if xs.shape != ys.shape:
        raise ValueError(f"length mismatch: x has {xs.size} values, y has {ys.size}")
    for name, arr in (("x", xs), ("y", ys)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"coordinate {name} is NaN/infinite at row {bad[0]}")
    return np.column_stack([xs, ys])


def kmeans_folds(x: ArrayLike, y: ArrayLike, k: int = 6, seed: int = 0) -> NDArray[np.int64]:
    """Fold id (0..k-1) of each point from K-means clustering of its coordinates.

    Deterministic for a seed. Folds are numbered by their centroid, west to east (then
    south to north), so the numbering does not depend on K-means' internal label order.
    """
    coords = _coordinates(x, y)
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    distinct = np.unique(coords, axis=0).shape[0]
    if distinct < k:
        raise ValueError(f"k={k} folds need at least {k} distinct locations, got {distinct}")
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(coords)
    centres = model.cluster_centers_
    order = np.lexsort((centres[:, 1], centres[:, 0]))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    folds = rank[model.labels_]
    sizes = np.bincount(folds, minlength=k)
    if np.any(sizes == 0):
        raise ValueError(f"K-means left empty fold(s): sizes {sizes.tolist()}")
    log.info("kmeans folds (k=%d, seed=%d): sizes %s", k, seed, sizes.tolist())
    return folds


def block_folds(
    x: ArrayLike, y: ArrayLike, k: int = 6, block_size_m: float = 50_000.0, seed: int = 0
) -> NDArray[np.int64]:
    """Fold id (0..k-1) of each point from square grid blocks assigned to folds.

    The grid is anchored at the CRS origin (block edges at multiples of `block_size_m`), so a
    point's block does not depend on the other points. Blocks are shuffled with `seed`, then
    assigned largest first to the fold holding the fewest points, which balances fold sizes.
    """
    coords = _coordinates(x, y)
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if not block_size_m > 0:
        raise ValueError(f"block_size_m must be positive, got {block_size_m}")
    cells = np.floor(coords / block_size_m).astype(np.int64)
    blocks, block_of_point, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    block_of_point = block_of_point.reshape(-1)
    if blocks.shape[0] < k:
        raise ValueError(
            f"k={k} folds need at least {k} occupied blocks, got {blocks.shape[0]} "
            f"with block_size_m={block_size_m}: use smaller blocks or fewer folds"
        )
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(blocks.shape[0])
    order = shuffled[np.argsort(-counts[shuffled], kind="stable")]
    fold_of_block = np.empty(blocks.shape[0], dtype=np.int64)
    load = np.zeros(k, dtype=np.int64)
    for block in order:
        fold = int(np.argmin(load))
        fold_of_block[block] = fold
        load[fold] += counts[block]
    log.info(
        "block folds (k=%d, %d blocks of %.0f m, seed=%d): sizes %s",
        k,
        blocks.shape[0],
        block_size_m,
        seed,
        load.tolist(),
    )
    return fold_of_block[block_of_point]


def assign_folds(x: ArrayLike, y: ArrayLike, config: FoldConfig) -> NDArray[np.int64]:
    """Fold id of each point by the method of `config`."""
    if config.method == "kmeans":
        return kmeans_folds(x, y, k=config.k, seed=config.seed)
    return block_folds(x, y, k=config.k, block_size_m=config.block_size_m, seed=config.seed)


def validation_indices(
    x: ArrayLike,
    y: ArrayLike,
    train_idx: ArrayLike,
    val_fraction: float,
    seed: int = 0,
) -> NDArray[np.int64]:
    """A compact spatial group of training rows held out for validation.

    A training point chosen with `seed` is the centre; its ``ceil(val_fraction * n_train)``
    nearest training points (itself included) form the validation set. Returns sorted row
    indices, a subset of `train_idx`, leaving at least one training row.
    """
    coords = _coordinates(x, y)
    train = np.unique(np.asarray(train_idx, dtype=np.int64))
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if train.size < 2:
        raise ValueError(f"a validation split needs at least 2 training rows, got {train.size}")
    if train[0] < 0 or train[-1] >= coords.shape[0]:
        raise ValueError(f"train_idx out of range for {coords.shape[0]} points")
    n_val = min(max(1, math.ceil(val_fraction * train.size)), train.size - 1)
    rng = np.random.default_rng(seed)
    centre = coords[train[rng.integers(train.size)]]
    distance = np.hypot(*(coords[train] - centre).T)
    nearest = np.argsort(distance, kind="stable")[:n_val]
    return np.sort(train[nearest])


def fold_split(
    fold_ids: ArrayLike,
    test_fold: int,
    x: ArrayLike,
    y: ArrayLike,
    val_fraction: float,
    seed: int = 0,
) -> FoldSplit:
    """Train / validation / test rows for one round of spatial cross-validation.

    The test rows are those of `test_fold`; validation rows are a compact group of the other
    folds' rows (`validation_indices`, seeded by ``(seed, test_fold)``); training rows are
    the rest. Raises ValueError if the test fold is unknown, and RuntimeError
    (`check_disjoint`) if the three sets were not disjoint or did not cover every row.
    """
    folds = np.asarray(fold_ids)
    coords = _coordinates(x, y)
    if folds.ndim != 1 or folds.shape[0] != coords.shape[0]:
        raise ValueError(f"fold_ids has shape {folds.shape}, expected ({coords.shape[0]},)")
    present = np.unique(folds)
    if test_fold not in present:
        raise ValueError(f"test_fold {test_fold} not among the fold ids {present.tolist()}")
    test = np.flatnonzero(folds == test_fold)
    not_test = np.flatnonzero(folds != test_fold)
    fold_seed = int(np.random.SeedSequence([seed, int(test_fold)]).generate_state(1)[0])
    val = validation_indices(coords[:, 0], coords[:, 1], not_test, val_fraction, fold_seed)
    train = np.setdiff1d(not_test, val, assume_unique=True)
    check_disjoint(FoldSplit(train, val, test), coords.shape[0])
    return FoldSplit(train, val, test)


def check_disjoint(split: FoldSplit, n: int) -> None:
    """Raise RuntimeError unless train, val and test are disjoint and cover rows 0..n-1."""
    pairs = (("train", "val"), ("train", "test"), ("val", "test"))
    for a, b in pairs:
        common = np.intersect1d(getattr(split, a), getattr(split, b))
        if common.size:
            raise RuntimeError(f"{a} and {b} rows overlap ({common.size} rows, e.g. {common[0]})")
    covered = np.concatenate(split)
    if covered.size != n or not np.array_equal(np.sort(covered), np.arange(n)):
        raise RuntimeError(f"split covers {covered.size} rows, expected each of {n} exactly once")
