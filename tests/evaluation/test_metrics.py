"""Metric formulas against hand-computed values, scikit-learn and scipy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from soilnet.evaluation import metrics

# Tiny case worked by hand: errors p - y = [1, 0, -1, 2].
Y = np.array([1.0, 2.0, 3.0, 4.0])
P = np.array([2.0, 2.0, 2.0, 6.0])


def test_hand_computed_values():
    got = metrics.regression_metrics(Y, P)
    assert list(got) == list(metrics.METRIC_NAMES)
    assert got["rmse"] == pytest.approx(math.sqrt(6 / 4))
    assert got["mae"] == pytest.approx(1.0)
    assert got["me"] == pytest.approx(0.5)
    # SS_tot = 5, SS_res = 6
    assert got["r2"] == pytest.approx(-0.2)
    # cov = 1.5, var(y) = 1.25, var(p) = 3, (mean diff)^2 = 0.25
    assert got["ccc"] == pytest.approx(3.0 / 4.5)
    # observed quartiles 1.75 and 3.25 (linear interpolation): IQR 1.5
    assert got["rpiq"] == pytest.approx(1.5 / math.sqrt(1.5))


def test_rpiq_uses_observed_quartiles_not_predictions():
    error = math.sqrt(1.5)
    prediction_iqr = np.subtract(*np.percentile(P, [75, 25]))  # 1.0
    reference_defect = np.percentile(P, 75) - np.percentile(Y, 25)  # Q3(p) - Q1(y) = 1.25
    got = metrics.rpiq(Y, P)
    assert got == pytest.approx(1.5 / error)
    assert got != pytest.approx(prediction_iqr / error)
    assert got != pytest.approx(reference_defect / error)


def test_rpiq_of_constant_predictions_reflects_observed_spread():
    y = np.arange(20.0)
    p = np.full(20, y.mean())
    assert metrics.rpiq(y, p) == pytest.approx(stats.iqr(y) / metrics.rmse(y, p))
    assert metrics.rpiq(y, p) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_sklearn_and_scipy(seed):
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 10.0, size=200)
    p = 0.7 * y + rng.normal(3.0, 5.0, size=200)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert metrics.mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert metrics.r2(y, p) == pytest.approx(r2_score(y, p))
    assert metrics.mean_error(y, p) == pytest.approx(np.mean(p) - np.mean(y))
    # Lin's CCC from Pearson's r with population standard deviations
    r = stats.pearsonr(y, p).statistic
    sy, sp = np.std(y), np.std(p)
    expected_ccc = 2 * r * sy * sp / (sy**2 + sp**2 + (y.mean() - p.mean()) ** 2)
    assert metrics.ccc(y, p) == pytest.approx(expected_ccc)
    assert metrics.rpiq(y, p) == pytest.approx(stats.iqr(y) / metrics.rmse(y, p))


def test_ccc_identical_is_one_and_shift_lowers_it():
    y = np.linspace(0.0, 10.0, 50)
    assert metrics.ccc(y, y) == pytest.approx(1.0)
    shifted = metrics.ccc(y, y + 2.0)
    assert shifted < 1.0
    # population variance: 2 var / (2 var + shift^2)
    assert shifted == pytest.approx(2 * y.var() / (2 * y.var() + 4.0))
    # Pearson's r is blind to the shift, CCC is not
    assert stats.pearsonr(y, y + 2.0).statistic == pytest.approx(1.0)


def test_degenerate_cases_are_nan_or_inf():
    constant = np.full(5, 3.0)
    assert math.isnan(metrics.r2(constant, constant + 1.0))
    assert math.isnan(metrics.ccc(constant, constant))
    y = np.arange(5.0)
    assert metrics.rpiq(y, y) == math.inf
    assert math.isnan(metrics.rpiq(constant, constant))


def test_accepts_lists_and_column_vectors():
    assert metrics.rmse([1, 2, 3], np.array([[1.0], [2.0], [4.0]])) == pytest.approx(math.sqrt(1 / 3))


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "length mismatch"),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], r"y_true .*row 1"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, np.inf], r"y_pred .*row 2"),
        ([1.0], [1.0], "at least 2 points"),
        (np.ones((2, 2)), np.ones((2, 2)), "1-D"),
    ],
)
def test_bad_input_raises(y, p, message):
    with pytest.raises(ValueError, match=message):
        metrics.regression_metrics(y, p)


def _per_fold_tables() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.normal(20.0, 5.0, size=90)
    folds = np.repeat([0, 1, 2], 30)
    good = metrics.per_fold_metrics(y, y + rng.normal(0, 1, 90), folds, "vit")
    bad = metrics.per_fold_metrics(y, y + rng.normal(2, 4, 90), folds, "random_forest")
    return pd.concat([good, bad], ignore_index=True)


def test_per_fold_metrics_rows():
    table = _per_fold_tables()
    assert list(table.columns) == ["model", "target", "fold", "n", *metrics.METRIC_NAMES]
    assert (table["target"] == "").all()
    assert table["fold"].tolist() == [0, 1, 2, 0, 1, 2]
    assert (table["n"] == 30).all()


def test_per_fold_metrics_rejects_bad_folds():
    y = np.arange(6.0)
    with pytest.raises(ValueError, match="fold_ids has shape"):
        metrics.per_fold_metrics(y, y, [0, 1], "m")
    with pytest.raises(ValueError, match=r"model 'm', fold 1: .*at least 2 points"):
        metrics.per_fold_metrics(y, y + 1, [0, 0, 0, 1, 2, 2], "m")


def test_summary_is_mean_and_sample_std_over_folds():
    table = _per_fold_tables()
    summary = metrics.summarise_folds(table)
    assert summary["model"].tolist()[:6] == ["vit"] * 6
    assert summary["metric"].tolist()[:6] == list(metrics.METRIC_NAMES)
    row = summary[(summary["model"] == "random_forest") & (summary["metric"] == "rmse")]
    rf_rmse = table.loc[table["model"] == "random_forest", "rmse"]
    assert row["mean"].item() == pytest.approx(rf_rmse.mean())
    assert row["std"].item() == pytest.approx(np.std(rf_rmse, ddof=1))
    assert row["n_folds"].item() == 3
    population = metrics.summarise_folds(table, ddof=0)
    assert population.loc[row.index, "std"].item() == pytest.approx(np.std(rf_rmse))


def test_summary_rejects_incomplete_tables():
    with pytest.raises(ValueError, match="lacks column"):
        metrics.summarise_folds(pd.DataFrame({"fold": [0], "rmse": [1.0]}))
    with pytest.raises(ValueError, match="no metric column"):
        metrics.summarise_folds(pd.DataFrame({"model": ["a"], "fold": [0], "note": ["x"]}))
    table = _per_fold_tables()
    with pytest.raises(ValueError, match="repeats model 'vit', fold 0"):
        metrics.summarise_folds(pd.concat([table, table.iloc[:1]]))


def test_comparison_table_text():
    summary = metrics.summarise_folds(_per_fold_tables())
    wide = metrics.comparison_frame(summary, digits=2)
    assert list(wide.index) == ["vit", "random_forest"]
    assert list(wide.columns) == list(metrics.METRIC_NAMES)
    rmse_row = summary[(summary["model"] == "vit") & (summary["metric"] == "rmse")].iloc[0]
    assert wide.loc["vit", "rmse"] == f"{rmse_row['mean']:.2f} ± {rmse_row['std']:.2f}"
    text = metrics.format_comparison(summary, digits=2)
    lines = text.splitlines()
    assert lines[0].split() == ["model", *metrics.METRIC_NAMES]
    assert lines[2].startswith("vit") and lines[3].startswith("random_forest")
    assert wide.loc["random_forest", "ccc"] in lines[3]
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_is_better_follows_metric_direction():
    assert metrics.is_better("rmse", 1.0, 2.0)
    assert not metrics.is_better("rmse", 2.0, 2.0)
    assert metrics.is_better("ccc", 0.6, 0.5)
    assert metrics.is_better("me", -0.1, 0.3)
    assert not metrics.is_better("me", -0.5, 0.3)
    assert metrics.is_better("macro_f1", 0.7, 0.6) and metrics.is_better("balanced_accuracy", 0.7, 0.6)
    assert metrics.is_better("log_loss", 0.4, 0.5) and not metrics.is_better("log_loss", 0.6, 0.5)
    with pytest.raises(ValueError, match="unknown metric 'mse'"):
        metrics.is_better("mse", 1.0, 2.0)
