"""Split-conformal intervals: hand-worked quantiles and folds, and near-nominal coverage on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from soilnet.evaluation.conformal import (
    calibrate,
    conformal_quantile,
    coverage_by_aoa,
    interval_metrics,
    level_name,
    load_calibrations,
    normalised_scores,
    reliability,
    save_calibrations,
    sigma_floor,
)


def test_level_names() -> None:
    assert [level_name(v) for v in (0.9, 0.95, 0.975, 0.5)] == ["90", "95", "97.5", "50"]
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        level_name(1.0)


def test_quantile_is_the_finite_sample_rank() -> None:
    scores = [3.0, 0.5, 2.0, 1.0]
    assert conformal_quantile(scores, 0.5) == 2.0  # ceil(5 * 0.5) = 3rd smallest
    assert conformal_quantile(scores, 0.75) == 3.0  # ceil(3.75) = 4th
    assert conformal_quantile(scores, 0.9) == math.inf  # ceil(4.5) = 5 > 4 scores


def test_scores_are_normalised_with_a_floor() -> None:
    np.testing.assert_allclose(normalised_scores([1, 2, 4], [0, 0, 0], [1, 2, 0], floor=0.5), [1, 1, 8])
    assert sigma_floor([0.0, 2.0, 4.0, 6.0]) == pytest.approx(0.04)
    assert sigma_floor([0.0, 0.0]) == 1.0


def test_hand_worked_folds() -> None:
    y, pred, sigma, folds = [1.0, 2.0, 4.0, 7.0], [0.0] * 4, [1.0] * 4, [0, 0, 1, 1]
    cal = calibrate(y, pred, sigma, folds, [0.5])
    assert cal.quantile(0.5) == 4.0  # scores 1 2 4 7: 3rd
    assert cal.quantile(0.5, fold=0) == 7.0  # fold 0 judged by scores 4, 7: 2nd
    assert cal.quantile(0.5, fold=1) == 2.0  # fold 1 judged by scores 1, 2
    table = interval_metrics(cal, y, pred, sigma, folds, 0.5)
    assert table.to_dict("list") == {"fold": [0, 1], "coverage_50": [1.0, 0.0], "width_50": [14.0, 4.0]}
    inside = coverage_by_aoa(cal, y, pred, sigma, folds, [True, False, True, True], 0.5)
    assert inside == {
        "coverage_50_inside_aoa": pytest.approx(1 / 3),
        "coverage_50_outside_aoa": 1.0,
        "n_inside_aoa": 3,
        "n_outside_aoa": 1,
    }
    lower, upper = cal.bounds([10.0, np.nan], [0.5, 1.0], 0.5)
    np.testing.assert_allclose(lower, [8.0, np.nan])
    np.testing.assert_allclose(upper, [12.0, np.nan])


def test_synthetic_coverage_is_nominal_and_adapts_to_sigma(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 6000
    spread = rng.uniform(0.2, 3.0, n)
    pred = rng.normal(size=n)
    y = pred + spread * rng.normal(size=n)
    sigma = 2.5 * spread  # right shape, wrong scale: the quantile absorbs the scale
    folds = rng.integers(0, 6, n)
    cal = calibrate(y, pred, sigma, folds, [0.9])
    per_fold = interval_metrics(cal, y, pred, sigma, folds, 0.9)
    assert per_fold["coverage_90"].mean() == pytest.approx(0.9, abs=0.015)
    low = spread < np.median(spread)
    split = coverage_by_aoa(cal, y, pred, sigma, folds, low, 0.9)
    assert split["coverage_90_inside_aoa"] == pytest.approx(0.9, abs=0.02)
    assert split["coverage_90_outside_aoa"] == pytest.approx(0.9, abs=0.02)
    curve = reliability(y, pred, sigma, folds, (0.5, 0.8, 0.95))
    np.testing.assert_allclose(curve["observed"], curve["nominal"], atol=0.02)
    back = load_calibrations(save_calibrations({"soc_g_kg": cal}, tmp_path / "cal.json"))["soc_g_kg"]
    assert back.quantile(0.9, fold=3) == cal.quantile(0.9, fold=3)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="sigma has NaN/infinite values, first at row 1"):
        calibrate([1.0, 2.0], [1.0, 2.0], [1.0, np.nan], [0, 1], [0.9])
    with pytest.raises(ValueError, match="at least 2 folds"):
        calibrate([1.0, 2.0], [1.0, 2.0], [1.0, 1.0], [0, 0], [0.9])
