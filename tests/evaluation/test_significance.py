"""Paired tests of an experiment: scipy's tests on per-fold scores, the bootstrap over points, Holm."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from soilnet.evaluation.significance import bootstrap_rmse_test, fold_test, holm, pairwise_tests


def test_fold_tests_are_scipys_paired_tests():
    a = np.array([3.1, 3.4, 2.9, 3.8, 3.2, 3.5])
    b = a + np.array([0.5, 0.7, 0.4, 0.9, 0.6, 0.3])
    assert fold_test(a, b, "ttest") == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # every fold agrees: the exact signed-rank test's smallest two-sided p with 6 folds, 2 / 64
    assert fold_test(a, b, "wilcoxon") == pytest.approx(2 / 64)
    assert fold_test(a, a, "ttest") == 1.0
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_test([1.0], [2.0], "ttest")


def test_bootstrap_separates_a_better_model_and_not_an_equal_one():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    good, bad = y + rng.normal(0, 0.5, 400), y + rng.normal(0, 1.0, 400)
    assert bootstrap_rmse_test(y, good, bad, 500) < 0.01
    assert bootstrap_rmse_test(y, good, good, 500) == 1.0


def test_holm_adjustment_by_hand():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_pairwise_tests_name_which_models_differ():
    scores = pd.DataFrame(
        {
            "deep": [3.0, 3.1, 2.9, 3.2, 3.0, 3.1],
            "rf": [4.0, 4.2, 3.9, 4.4, 4.1, 4.0],
            "gb": [4.0, 4.1, 4.0, 4.3, 4.1, 4.1],
        }
    )
    tests = pairwise_tests(scores, "ttest", 0.05)
    assert list(zip(tests["a"], tests["b"], strict=True)) == [("deep", "rf"), ("deep", "gb"), ("rf", "gb")]
    differ = tests.set_index(["a", "b"])["significant"]
    assert differ[("deep", "rf")] and differ[("deep", "gb")] and not differ[("rf", "gb")]
    assert (tests["p_holm"] >= tests["p"]).all()
