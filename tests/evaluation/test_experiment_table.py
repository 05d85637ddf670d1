"""The experiment table: mean ± std over folds [std over seeds], by hand."""

import numpy as np
import pandas as pd
import pytest

from soilnet.evaluation.experiment_table import fold_scores, format_experiment, seed_fold_summary


def _per_fold() -> pd.DataFrame:
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.2)):
        for fold, rmse in enumerate([1.0, 2.0, 3.0]):
            rows.append({"model": "deep", "target": "soc", "seed": seed, "fold": fold, "n": 10, "rmse": rmse + shift})
            rows.append({"model": "rf", "target": "soc", "seed": seed, "fold": fold, "n": 10, "rmse": 2 * rmse})
    return pd.DataFrame(rows)


def test_fold_and_seed_spreads_by_hand():
    summary = seed_fold_summary(_per_fold()).set_index(["model", "metric"])
    deep = summary.loc[("deep", "rmse")]
    assert deep["mean"] == pytest.approx(2.1)
    assert deep["fold_std"] == pytest.approx(1.0)  # seed means per fold 1.1, 2.1, 3.1
    assert deep["seed_std"] == pytest.approx(np.std([2.0, 2.2], ddof=1))  # fold means per seed
    assert summary.loc[("rf", "rmse"), "seed_std"] == 0.0
    assert list(summary.index.get_level_values("model")) == ["deep", "rf"]


def test_fold_scores_and_table_layout():
    per_fold = _per_fold()
    scores = fold_scores(per_fold, "rmse")
    assert list(scores.columns) == ["deep", "rf"] and list(scores.index) == [0, 1, 2]
    np.testing.assert_allclose(scores["deep"], [1.1, 2.1, 3.1])
    text = format_experiment(seed_fold_summary(per_fold), {"rf": "centre pixel"})
    lines = text.splitlines()
    assert lines[0] == "target: soc"
    assert lines[1].split() == ["model", "inputs", "rmse"]
    assert "2.100 ± 1.000 [0.141]" in lines[3] and "centre pixel" in lines[4]
    assert lines[-1] == "mean ± std over 3 folds [std over 2 seeds]"


def test_a_repeated_row_is_refused():
    per_fold = _per_fold()
    with pytest.raises(ValueError, match="repeats model 'deep', seed 0, fold 0"):
        seed_fold_summary(pd.concat([per_fold, per_fold.iloc[:1]]))
