"""Tree baselines: features, configuration, learning and fold isolation."""

from typing import ClassVar

import numpy as np
import pydantic
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from soilnet.data.folds import kmeans_folds
from soilnet.evaluation import baselines as bl

N, C, T, V = 240, 4, 12, 3


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0.0, 1.0, (N, C))
    climate = rng.normal(0.0, 1.0, (N, T, V)) + rng.normal(0.0, 1.0, (N, 1, V))
    target = 10.0 * centre[:, 0] + 3.0 * climate[:, :, 1].mean(1) + rng.normal(0.0, 0.3, N)
    x, y = rng.uniform(0, 1e5, N), rng.uniform(0, 1e5, N)
    return centre, climate, target, kmeans_folds(x, y, k=4, seed=0)


def _small_config(**kwargs) -> bl.BaselineConfig:
    return bl.BaselineConfig(
        random_forest={"n_estimators": 40, "min_samples_leaf": 3},
        gradient_boosting={"max_iter": 60, "learning_rate": 0.1, "min_samples_leaf": 5},
        classifier={"n_estimators": 30},
        **kwargs,
    )


def test_config_defaults_are_the_reference_settings():
    cfg = bl.BaselineConfig()
    assert cfg.random_forest.n_estimators == 300
    assert cfg.random_forest.max_depth == 10
    assert cfg.random_forest.min_samples_leaf == 20
    assert cfg.models == ["random_forest", "gradient_boosting"]
    rf = bl.make_regressor("random_forest", cfg.model_copy(update={"n_jobs": 2, "seed": 5}))
    assert (rf.n_estimators, rf.max_depth, rf.min_samples_leaf) == (300, 10, 20)
    assert (rf.random_state, rf.n_jobs) == (5, 2)


def test_config_validation():
    with pytest.raises(pydantic.ValidationError, match="n_jobs"):
        bl.BaselineConfig(n_jobs=0)
    with pytest.raises(pydantic.ValidationError, match="more than once"):
        bl.BaselineConfig(models=["random_forest", "random_forest"])
    with pytest.raises(pydantic.ValidationError, match="climate_features"):
        bl.BaselineConfig(climate_features="monthly")
    with pytest.raises(pydantic.ValidationError, match="trees"):
        bl.BaselineConfig(random_forest={"trees": 10})


def test_centre_pixels_take_the_middle_pixel():
    images = np.zeros((2, 3, 8, 8))
    images[:, :, 4, 4] = [[1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(bl.centre_pixels(images), [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"\(N, C, P, P\)"):
        bl.centre_pixels(np.zeros((2, 3, 8, 7)))


def test_climate_summary_values():
    climate = np.array([[[1.0, 10.0], [3.0, 10.0], [5.0, 40.0]]])  # (1, T=3, V=2)
    summary = bl.climate_summary(climate)
    np.testing.assert_allclose(summary, [[3.0, 20.0, np.std([1, 3, 5]), np.std([10, 10, 40]), 1.0, 10.0, 5.0, 40.0]])


@pytest.mark.parametrize(
    ("mode", "width"),
    [
        ("none", C),
        ("summary", C + 4 * V),
        ("series", C + T * V),
        ("summary+series", C + 4 * V + T * V),
    ],
)
def test_tabular_feature_widths(mode, width):
    centre, climate, _, _ = _data()
    features = bl.tabular_features(centre, climate, mode)
    assert features.shape == (N, width)
    np.testing.assert_array_equal(features[:, :C], centre)


def test_tabular_features_bad_input():
    centre, climate, _, _ = _data()
    with pytest.raises(ValueError, match="needs a climate array"):
        bl.tabular_features(centre, None, "summary")
    with pytest.raises(ValueError, match="climate has 10 rows but centre pixels have 240"):
        bl.tabular_features(centre, climate[:10])
    bad = climate.copy()
    bad[7, 2, 1] = np.inf
    with pytest.raises(ValueError, match=r"climate has infinite values, first at index \(7, 2, 1\)"):
        bl.tabular_features(centre, bad)


def test_missing_months_are_left_out_of_the_climate_summary():
    climate = np.array([[[1.0, np.nan], [np.nan, np.nan], [5.0, np.nan]]])  # (1, T=3, V=2): 2nd variable all missing
    summary = bl.climate_summary(climate)
    np.testing.assert_allclose(summary[0, [0, 2, 4, 6]], [3.0, 2.0, 1.0, 5.0])
    assert np.isnan(summary[0, [1, 3, 5, 7]]).all()  # nothing to summarise: imputed per fold later


@pytest.mark.parametrize("model", ["random_forest", "gradient_boosting", "linear"])
def test_missing_features_are_imputed_from_the_training_folds_only(model):
    """A test row's missing value is filled from the training folds: moving the other test rows' values
    (which would move a median over all rows) must not change its prediction."""
    rng = np.random.default_rng(1)
    folds = np.repeat([0, 1], 100)
    x = np.concatenate([rng.uniform(0.0, 0.2, 100), rng.uniform(0.0, 1.0, 100)])[:, None]  # fold 1 median ~0.5
    x[:5] = np.nan  # missing in the test fold 0
    predictions = []
    for shift in (0.0, 0.8):  # fold 0's observed values: 0..0.2, then 0.8..1.0
        moved = x.copy()
        moved[5:100] += shift
        target = np.where(np.isnan(moved[:, 0]), 0.0, 10.0 * moved[:, 0])
        result = bl.evaluate_baselines(
            moved, None, target, folds, _small_config(models=[model], climate_features="none")
        )[0]
        predictions.append(result.predictions[:5])
    np.testing.assert_array_equal(predictions[0], predictions[1])
    train_median = np.median(x[100:, 0])
    np.testing.assert_allclose(predictions[0], 10.0 * train_median, atol=1.0)  # imputed with fold 1's median


def test_baselines_learn_the_signal_and_beat_the_mean():
    centre, climate, target, folds = _data()
    results = bl.evaluate_baselines(centre, climate, target, folds, _small_config())
    assert [r.model for r in results] == ["random_forest", "gradient_boosting"]
    for result in results:
        assert np.all(np.isfinite(result.predictions))
        assert len(result.per_fold) == 4
        # every fold's RMSE beats predicting that fold's own mean, i.e. R2 > 0
        assert (result.per_fold["r2"] > 0.5).all(), result.per_fold
        assert (result.per_fold["rmse"] < target.std()).all()


def test_random_forest_gets_conformal_intervals_checked_on_held_out_folds():
    centre, climate, target, folds = _data()
    forest, boosting = bl.evaluate_baselines(centre, climate, target, folds, _small_config())
    assert {"coverage_90", "width_90"} <= set(forest.per_fold.columns)
    assert "coverage_90" not in boosting.per_fold.columns  # no spread of its own: no intervals
    coverage = np.average(forest.per_fold["coverage_90"], weights=forest.per_fold["n"])
    assert 0.8 <= coverage <= 1.0 and (forest.per_fold["width_90"] > 0).all()
    none = bl.evaluate_baselines(centre, climate, target, folds, _small_config(interval_levels=[]))[0]
    assert "coverage_90" not in none.per_fold.columns
    np.testing.assert_array_equal(none.predictions, forest.predictions)


def test_climate_features_matter_for_a_climate_signal():
    centre, climate, target, folds = _data()
    without = bl.evaluate_baselines(
        centre,
        climate,
        target,
        folds,
        _small_config(models=["random_forest"], climate_features="none"),
    )[0]
    with_climate = bl.evaluate_baselines(centre, climate, target, folds, _small_config(models=["random_forest"]))[0]
    assert with_climate.per_fold["rmse"].mean() < without.per_fold["rmse"].mean()


class _RecordingRegressor(RegressorMixin, BaseEstimator):
    """Predicts the training mean and records the row ids (column 0) it was fitted on."""

    fitted_rows: ClassVar[list[np.ndarray]] = []

    def fit(self, x, y):
        _RecordingRegressor.fitted_rows.append(x[:, 0].astype(int))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x):
        return np.full(x.shape[0], self.mean_)


def test_no_test_row_reaches_fit():
    _RecordingRegressor.fitted_rows.clear()
    _, _, target, folds = _data()
    row_ids = np.arange(N, dtype=float)[:, None]
    result = bl.cross_validate(_RecordingRegressor(), row_ids, target, folds, "recorder")
    assert len(_RecordingRegressor.fitted_rows) == 4
    for fold, rows in zip(np.unique(folds), _RecordingRegressor.fitted_rows, strict=True):
        np.testing.assert_array_equal(rows, np.flatnonzero(folds != fold))
    # out-of-fold prediction of a mean regressor: the mean of the other folds
    fold0 = folds == 0
    np.testing.assert_allclose(result.predictions[fold0], target[~fold0].mean())


def test_memorisable_target_does_not_leak_across_folds():
    """Row-unique random features and random targets: only memorising test rows would score."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(N, 3))
    target = rng.normal(size=N)
    folds = np.arange(N) % 4
    cfg = bl.BaselineConfig(random_forest={"n_estimators": 30, "max_depth": None, "min_samples_leaf": 1})
    result = bl.evaluate_feature_forest(features, target, folds, cfg)
    assert result.model == "random_forest_ssl_features"
    assert result.per_fold["r2"].max() < 0.3
    # the same forest scored on rows it was trained on does memorise them
    memorised = bl.make_regressor("random_forest", cfg).fit(features, target).predict(features)
    assert np.corrcoef(memorised, target)[0, 1] > 0.8


def test_cross_validate_bad_input():
    features = np.ones((10, 2))
    target = np.arange(10.0)
    rf = bl.make_regressor("random_forest", _small_config())
    with pytest.raises(ValueError, match="at least 2 folds"):
        bl.cross_validate(rf, features, target, np.zeros(10, dtype=int), "rf")
    with pytest.raises(ValueError, match="integer"):
        bl.cross_validate(rf, features, target, np.zeros(10), "rf")
    with pytest.raises(ValueError, match="row counts differ"):
        bl.cross_validate(rf, features, target[:9], np.arange(10) % 2, "rf")
    bad_target = target.copy()
    bad_target[4] = np.nan
    with pytest.raises(ValueError, match=r"targets has NaN/infinite values, first at index \(4,\)"):
        bl.cross_validate(rf, features, bad_target, np.arange(10) % 2, "rf")


def test_classifier_defaults_are_miso_baseline():
    rf = bl.make_classifier(bl.BaselineConfig(seed=3))
    assert (rf.n_estimators, rf.max_depth, rf.min_samples_leaf, rf.max_features) == (253, None, 1, "sqrt")
    assert rf.random_state == 3 and rf.class_weight is None


def _classes(target: np.ndarray) -> np.ndarray:
    """Three classes cut from the regression target at its terciles."""
    return np.digitize(target, np.quantile(target, [1 / 3, 2 / 3]))


def test_classifier_baseline_learns_classes_on_the_same_folds():
    centre, climate, target, folds = _data()
    codes = _classes(target)
    small = _small_config()
    result = bl.evaluate_baselines(centre, climate, codes, folds, small, "texture", ["a", "b", "c"])[0]
    assert result.model == "random_forest"
    assert result.predictions.shape == (N, 3)
    np.testing.assert_allclose(result.predictions.sum(axis=1), 1.0)
    assert (result.per_fold["target"] == "texture").all() and len(result.per_fold) == 4
    assert (result.per_fold["balanced_accuracy"] > 0.6).all(), result.per_fold  # chance: 1/3
    assert result.scores is not None and set(result.scores.per_class["class"]) == {"a", "b", "c"}
    ssl = bl.evaluate_feature_forest(centre, codes, folds, small, target="texture", classes=["a", "b", "c"])
    assert ssl.model == "random_forest_ssl_features" and ssl.per_fold["macro_f1"].notna().all()


def test_class_missing_from_a_folds_training_rows_gets_probability_zero():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2))
    codes = np.repeat([0, 1, 2], 20)  # class 2 only in fold 0: fold 0's model (fitted on fold 1) never saw it
    folds = np.where(np.arange(60) < 40, np.arange(60) % 2, 0)
    result = bl.cross_validate_classifier(bl.make_classifier(_small_config()), x, codes, folds, "rf", "t", "xyz")
    fold0 = folds == 0
    assert np.all(result.predictions[fold0, 2] == 0.0)
    np.testing.assert_allclose(result.predictions.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"class codes has 3 at row 5, not a class code in \[0, 3\)"):
        bl.cross_validate_classifier(bl.make_classifier(_small_config()), x, np.where(np.arange(60) == 5, 3, codes),
                                     folds, "rf", "t", "xyz")  # fmt: skip


def test_linear_baseline_fits_a_linear_signal_with_standardised_ridge():
    centre, climate, target, folds = _data()
    linear = bl.make_regressor("linear", _small_config())
    assert [type(step).__name__ for step in linear] == ["StandardScaler", "RidgeCV"]
    result = bl.evaluate_baselines(centre, climate, target, folds, _small_config(models=["linear"]))[0]
    assert result.model == "linear"
    # the signal is linear in the centre pixel and the climate mean: ridge explains nearly all of it
    assert (result.per_fold["r2"] > 0.9).all(), result.per_fold
