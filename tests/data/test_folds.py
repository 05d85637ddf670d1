"""Spatial folds: K-means and block grids, and the train / validation / test split."""

import math

import numpy as np
import pydantic
import pytest

from soilnet.data import folds as sf


def _clustered_points(n_per_cluster: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six groups of points 100 km apart in EPSG:3035-like metres."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3.9e6 + i * 1e5, 2.9e6 + (i % 2) * 1e5] for i in range(6)])
    points = np.concatenate([c + rng.normal(0, 1e4, (n_per_cluster, 2)) for c in centres])
    return points[:, 0], points[:, 1]


def _uniform_points(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 400_000, n), rng.uniform(0, 300_000, n)


def test_kmeans_folds_assign_every_point_to_k_nonempty_folds():
    x, y = _uniform_points()
    folds = sf.kmeans_folds(x, y, k=6, seed=3)
    assert folds.shape == x.shape and np.issubdtype(folds.dtype, np.integer)
    assert set(np.unique(folds)) == set(range(6))
    assert np.bincount(folds).min() > 0


def test_kmeans_folds_are_deterministic_and_numbered_west_to_east():
    x, y = _uniform_points()
    first = sf.kmeans_folds(x, y, k=5, seed=7)
    np.testing.assert_array_equal(first, sf.kmeans_folds(x, y, k=5, seed=7))
    centroid_x = [x[first == f].mean() for f in range(5)]
    assert centroid_x == sorted(centroid_x)


def test_kmeans_folds_are_spatially_compact():
    x, y = _uniform_points()
    folds = sf.kmeans_folds(x, y, k=6, seed=0)
    coords = np.column_stack([x, y])
    centroids = np.array([coords[folds == f].mean(0) for f in range(6)])
    distance = np.linalg.norm(coords[:, None, :] - centroids[None], axis=2)
    # every point is nearest to its own fold's centroid (Voronoi cells)
    np.testing.assert_array_equal(distance.argmin(1), folds)
    # and points of a fold are closer to each other than to the points of other folds
    pairwise = np.linalg.norm(coords[:, None, :] - coords[None], axis=2)
    same = folds[:, None] == folds[None]
    assert pairwise[same].mean() < 0.6 * pairwise[~same].mean()


def test_kmeans_recovers_separated_groups():
    x, y = _clustered_points()
    folds = sf.kmeans_folds(x, y, k=6)
    groups = np.repeat(np.arange(6), 40)
    for g in range(6):
        assert np.unique(folds[groups == g]).size == 1
    assert np.unique(folds).size == 6


def test_kmeans_rejects_too_few_locations_and_bad_coordinates():
    with pytest.raises(ValueError, match="at least 6 distinct locations"):
        sf.kmeans_folds([0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="coordinate y is NaN/infinite at row 2"):
        sf.kmeans_folds(np.arange(10.0), [0, 1, np.nan, 3, 4, 5, 6, 7, 8, 9], k=2)
    with pytest.raises(ValueError, match="length mismatch"):
        sf.kmeans_folds(np.arange(10.0), np.arange(9.0), k=2)


def test_block_folds_keep_blocks_together_and_balance_counts():
    x, y = _uniform_points(n=600)
    size = 50_000.0
    folds = sf.block_folds(x, y, k=4, block_size_m=size, seed=2)
    assert set(np.unique(folds)) == set(range(4))
    blocks = np.floor(np.column_stack([x, y]) / size).astype(int)
    block_ids = np.unique(blocks, axis=0, return_inverse=True)[1].reshape(-1)
    for b in np.unique(block_ids):
        assert np.unique(folds[block_ids == b]).size == 1
    sizes = np.bincount(folds)
    largest_block = np.bincount(block_ids).max()
    assert sizes.max() - sizes.min() <= largest_block


def test_block_folds_deterministic_per_seed():
    x, y = _uniform_points(n=600)
    a = sf.block_folds(x, y, k=4, block_size_m=50_000, seed=2)
    np.testing.assert_array_equal(a, sf.block_folds(x, y, k=4, block_size_m=50_000, seed=2))
    assert not np.array_equal(a, sf.block_folds(x, y, k=4, block_size_m=50_000, seed=3))


def test_block_folds_need_enough_blocks():
    x, y = _uniform_points()
    with pytest.raises(ValueError, match=r"at least 6 occupied blocks, got \d+ .*block_size_m"):
        sf.block_folds(x, y, k=6, block_size_m=300_000)


def test_fold_config_defaults_and_validation():
    cfg = sf.FoldConfig()
    assert (cfg.method, cfg.k, cfg.seed) == ("kmeans", 6, 0)
    with pytest.raises(pydantic.ValidationError, match="method"):
        sf.FoldConfig(method="random")
    with pytest.raises(pydantic.ValidationError, match="k"):
        sf.FoldConfig(k=1)
    with pytest.raises(pydantic.ValidationError, match="val_fraction"):
        sf.FoldConfig(val_fraction=0.0)
    with pytest.raises(pydantic.ValidationError, match="n_folds"):
        sf.FoldConfig(n_folds=5)


def test_assign_folds_dispatches_on_method():
    x, y = _uniform_points()
    kmeans = sf.assign_folds(x, y, sf.FoldConfig(k=4, seed=1))
    np.testing.assert_array_equal(kmeans, sf.kmeans_folds(x, y, k=4, seed=1))
    cfg = sf.FoldConfig(method="blocks", k=4, block_size_m=80_000, seed=1)
    np.testing.assert_array_equal(sf.assign_folds(x, y, cfg), sf.block_folds(x, y, k=4, block_size_m=80_000, seed=1))


def test_fold_split_is_disjoint_and_validation_inside_training_folds():
    x, y = _uniform_points()
    folds = sf.kmeans_folds(x, y, k=6)
    for test_fold in range(6):
        split = sf.fold_split(folds, test_fold, x, y, val_fraction=0.2, seed=0)
        assert np.all(folds[split.test] == test_fold)
        assert np.all(folds[split.val] != test_fold)
        assert np.all(folds[split.train] != test_fold)
        assert np.intersect1d(split.val, split.train).size == 0
        n_other = int((folds != test_fold).sum())
        assert split.val.size == math.ceil(0.2 * n_other)
        assert split.train.size + split.val.size + split.test.size == x.size


def test_validation_split_is_spatially_compact_and_seeded():
    x, y = _uniform_points()
    folds = sf.kmeans_folds(x, y, k=6)
    split = sf.fold_split(folds, 0, x, y, val_fraction=0.15, seed=4)
    coords = np.column_stack([x, y])
    val_spread = np.linalg.norm(coords[split.val] - coords[split.val].mean(0), axis=1).mean()
    train_spread = np.linalg.norm(coords[split.train] - coords[split.train].mean(0), axis=1).mean()
    assert val_spread < 0.5 * train_spread
    again = sf.fold_split(folds, 0, x, y, val_fraction=0.15, seed=4)
    np.testing.assert_array_equal(split.val, again.val)
    other_fold = sf.fold_split(folds, 1, x, y, val_fraction=0.15, seed=4)
    assert not np.array_equal(split.val, other_fold.val)


def test_fold_split_bad_input():
    x, y = _uniform_points(n=20)
    folds = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="test_fold 5 not among"):
        sf.fold_split(folds, 5, x, y, 0.1)
    with pytest.raises(ValueError, match="fold_ids has shape"):
        sf.fold_split(folds[:5], 0, x, y, 0.1)
    with pytest.raises(ValueError, match="val_fraction"):
        sf.fold_split(folds, 0, x, y, 1.5)


def test_validation_indices_leave_a_training_row():
    x, y = _uniform_points(n=10)
    val = sf.validation_indices(x, y, [3, 7], val_fraction=0.9)
    assert val.size == 1 and val[0] in (3, 7)
    with pytest.raises(ValueError, match="at least 2 training rows"):
        sf.validation_indices(x, y, [3], val_fraction=0.1)
    with pytest.raises(ValueError, match="out of range"):
        sf.validation_indices(x, y, [3, 10], val_fraction=0.1)


def test_check_disjoint_detects_overlap_and_gaps():
    ok = sf.FoldSplit(np.array([0, 1]), np.array([2]), np.array([3]))
    sf.check_disjoint(ok, 4)
    with pytest.raises(RuntimeError, match="train and test rows overlap"):
        sf.check_disjoint(sf.FoldSplit(np.array([0, 1]), np.array([2]), np.array([1, 3])), 4)
    with pytest.raises(RuntimeError, match="covers 3 rows"):
        sf.check_disjoint(sf.FoldSplit(np.array([0]), np.array([2]), np.array([3])), 4)
