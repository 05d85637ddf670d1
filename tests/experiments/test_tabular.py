"""Baseline arms: features of the windows read once in chunks, each arm's matrix, seeded cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import soilnet.experiments.tabular as tabular
from soilnet.evaluation.baselines import BaselineConfig
from soilnet.evaluation.design import BaselineArm

N, C, P, T, V = 60, 2, 9, 4, 3


class WindowSource:
    """Windows whose pixels hold the row's number (band 1: twice it), climate the row's number too."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        self.calls += 1
        rows = table["row"].to_numpy(np.float64)
        image = np.broadcast_to(rows[:, None, None, None], (len(rows), C, P, P)).copy()
        image[:, 1] *= 2.0
        return {"image": image, "climate": np.broadcast_to(rows[:, None, None], (len(rows), T, V)).copy()}


def test_features_are_read_in_chunks_and_each_arm_sees_its_inputs(monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK", 25)
    source = WindowSource()
    table = pd.DataFrame({"row": np.arange(N)})
    features = tabular.WindowFeatures.read(source, table, [3, 9])
    assert source.calls == 3
    assert features.centre.shape == (N, C) and features.context.shape == (N, 2 * C * 2)
    np.testing.assert_allclose(features.centre[7], [7.0, 14.0])
    centre = features.matrix(BaselineArm(model="random_forest", inputs="centre", climate="none"))
    context = features.matrix(BaselineArm(model="linear", inputs="context"))
    assert centre.shape == (N, C) and context.shape == (N, 2 * C * 2 + 4 * V)
    ssl = features.matrix(
        BaselineArm(model="random_forest", inputs="ssl_features", encoders_from="x", climate="none"), np.ones((N, 5))
    )
    assert ssl.shape == (N, 5)
    with pytest.raises(ValueError, match="need the features of arm 'x'"):
        features.matrix(BaselineArm(model="random_forest", inputs="ssl_features", encoders_from="x"))


def test_baselines_are_seeded_and_scored_on_the_table_folds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3))
    table = pd.DataFrame({"target": x[:, 0] * 3 + rng.normal(0, 0.1, N), "fold": np.repeat([0, 1, 2], N // 3)})
    config = BaselineConfig(random_forest={"n_estimators": 5, "min_samples_leaf": 2})
    forest = BaselineArm(model="random_forest", inputs="context")
    one, again, other = (tabular.run_baseline("fair_rf", forest, x, table, config, seed) for seed in (0, 0, 1))
    assert list(one.per_fold["model"].unique()) == ["fair_rf"] and list(one.per_fold["fold"]) == [0, 1, 2]
    np.testing.assert_array_equal(one.predictions, again.predictions)
    assert not np.array_equal(one.predictions, other.predictions)
    linear = tabular.run_baseline("fair_linear", BaselineArm(model="linear", inputs="context"), x, table, config, 1)
    assert (linear.per_fold["r2"] > 0.9).all()
