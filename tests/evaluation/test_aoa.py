"""Area of applicability: a hand-worked case, a brute-force DI, weights, threshold and round trip."""

from __future__ import annotations

import numpy as np
import pytest

from soilnet.evaluation.aoa import (
    aoa_threshold,
    fit_aoa,
    importance_weights,
    linear_importance,
    load_aoa,
    mean_pairwise_distance,
    save_aoa,
)


def test_hand_worked_one_feature() -> None:
    # points 0, 1, 3, 6: pair distances 1, 3, 6, 2, 5, 3 -> mean 10/3 (standardising scales both alike)
    ref = fit_aoa([[0.0], [1.0], [3.0], [6.0]], folds=[0, 0, 1, 1])
    assert ref.mean_distance * ref.scale[0] == pytest.approx(10 / 3)
    # nearest point of the other fold: 0->3, 1->3, 3->1, 6->1 = distances 3, 2, 2, 5
    np.testing.assert_allclose(ref.train_di, [0.9, 0.6, 0.6, 1.5])
    assert ref.threshold == pytest.approx(1.5)  # Q3 1.05 + 1.5 * 0.45 = 1.725: no outlier
    di = ref.dissimilarity([[4.5], [12.0], [3.0]])
    np.testing.assert_allclose(di, [0.45, 1.8, 0.0])
    np.testing.assert_array_equal(ref.inside(di), [True, False, True])


@pytest.mark.parametrize(("values", "expected"), [([1, 1, 1, 1, 10], 1.0), ([1, 2, 3, 4, 100], 4.0), ([2.0], 2.0)])
def test_threshold_drops_outliers(values: list[float], expected: float) -> None:
    assert aoa_threshold(values) == pytest.approx(expected)


def test_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(150, 5)) * [1, 10, 0.1, 3, 1]
    folds = rng.integers(0, 4, size=150)
    weights = np.array([1.0, 0.5, 0.2, 0.0, 0.8])
    new = rng.normal(size=(40, 5)) * 4
    ref = fit_aoa(train, folds, weights)

    space = (train - train.mean(0)) / train.std(0) * weights
    dist = np.linalg.norm(space[:, None] - space[None], axis=-1)
    mean_d = dist[~np.eye(len(train), dtype=bool)].mean()
    cv = np.array([dist[i, folds != folds[i]].min() for i in range(len(train))]) / mean_d
    new_space = (new - train.mean(0)) / train.std(0) * weights
    di = np.linalg.norm(new_space[:, None] - space[None], axis=-1).min(axis=1) / mean_d

    assert ref.mean_distance == pytest.approx(mean_d)
    np.testing.assert_allclose(ref.train_di, cv)
    np.testing.assert_allclose(ref.dissimilarity(new), di)
    q1, q3 = np.percentile(cv, [25, 75])
    assert ref.threshold == pytest.approx(cv[cv <= q3 + 1.5 * (q3 - q1)].max())
    assert mean_pairwise_distance(space) == pytest.approx(mean_d)


def test_zero_weight_ignores_a_feature_and_constant_features_are_kept() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 1))
    folds = np.arange(60) % 3
    noisy = np.hstack([x, rng.normal(size=(60, 1)) * 100, np.ones((60, 1))])
    one = fit_aoa(x, folds)
    three = fit_aoa(noisy, folds, [1.0, 0.0, 1.0])
    np.testing.assert_allclose(three.train_di, one.train_di)
    probe = np.array([[0.3, 500.0, 1.0]])
    np.testing.assert_allclose(three.dissimilarity(probe), one.dissimilarity(probe[:, :1]))


def test_importances() -> None:
    np.testing.assert_allclose(importance_weights([0.2, 0.5, 0.0]), [0.4, 1.0, 0.0])
    # column norms 5 and 1, times the feature std 1 and 2 -> 5, 2 -> scaled to max 1
    np.testing.assert_allclose(linear_importance([[3.0, 0.0], [4.0, 1.0]], [1.0, 2.0]), [1.0, 0.4])
    with pytest.raises(ValueError, match="every importance is 0"):
        importance_weights([0.0, 0.0])


def test_round_trip_and_errors(tmp_path) -> None:
    ref = fit_aoa(np.arange(20, dtype=float).reshape(10, 2) ** 1.5, np.arange(10) % 2)
    back = load_aoa(save_aoa(ref, tmp_path / "aoa.npz"))
    probe = [[3.0, 4.0], [100.0, 0.0]]
    np.testing.assert_allclose(back.dissimilarity(probe), ref.dissimilarity(probe))
    assert back.threshold == ref.threshold
    with pytest.raises(ValueError, match=r"features must be \(n, 2\)"):
        ref.dissimilarity([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="at least 2 folds"):
        fit_aoa([[0.0], [1.0]], [0, 0])
    with pytest.raises(ValueError, match="NaN/infinite values in 1 row"):
        fit_aoa([[0.0], [np.nan], [2.0]], [0, 1, 1])
