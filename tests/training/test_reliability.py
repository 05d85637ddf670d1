"""Calibrating a bundle on its folds: spreads, embeddings, conformal quantiles, AOA, files and table columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.evaluation.aoa import load_aoa
from soilnet.evaluation.conformal import load_calibrations
from soilnet.training.config import CalibrationConfig
from soilnet.training.reliability import calibrate_bundle, calibration_figures, with_intervals, write_calibration
from tests.fixtures.tiny_models import TINY_BANDS, TINY_MONTHS, TINY_PATCH_PX, TINY_VARIABLES, tiny_bundle


class RowSource:
    """Decoded windows seeded by each row's id: the same row reads the same window every time."""

    def read(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        images, series = [], []
        for row_id in table["id"]:
            rng = np.random.default_rng(int(row_id))
            images.append(rng.uniform(0, 1, (len(TINY_BANDS), TINY_PATCH_PX, TINY_PATCH_PX)).astype(np.float32))
            series.append(rng.normal(10, 5, (TINY_MONTHS, len(TINY_VARIABLES))).astype(np.float32))
        return {"image": np.stack(images), "climate": np.stack(series)}


def test_calibrated_bundle_files_and_table(tmp_path) -> None:
    bundle = tiny_bundle(folds=3)
    n = 90
    table = pd.DataFrame({"id": np.arange(n), "fold": np.arange(n) % 3})
    rng = np.random.default_rng(0)
    predictions = rng.normal(25, 5, n)
    y = predictions + rng.normal(0, 2, n)
    predictions[:3] = np.nan  # unscored rows are left out of the intervals
    levels = CalibrationConfig(levels=[0.5, 0.9])
    cal = calibrate_bundle(bundle, RowSource(), table, {"soc_g_kg": y}, {"soc_g_kg": predictions}, levels)

    # spread at a row = the bundle's own ensemble std there
    first = RowSource().read(table.iloc[:4])
    np.testing.assert_allclose(cal.sigma[:4, 0], bundle.predict(first["image"], first["climate"])[1][:, 0], rtol=1e-5)
    soc = cal.calibrations["soc_g_kg"]
    assert soc.levels == [0.5, 0.9] and set(soc.fold_quantiles) == {"0", "1", "2"}
    assert list(cal.per_fold.columns) == ["target", "fold", "n", "coverage_50", "width_50", "coverage_90", "width_90"]
    assert cal.per_fold["n"].sum() == n - 3
    assert 0.6 < cal.summary["coverage_90"] <= 1.0 and cal.summary["width_90"] > 0
    assert cal.aoa is not None and cal.aoa.n_features == 16  # branch_dim 8 per branch, image + climate
    assert 0.0 < cal.summary["aoa_fraction"] <= 1.0
    assert cal.summary["n_inside_aoa"] + cal.summary["n_outside_aoa"] == n - 3
    assert cal.interval_line().startswith("INTERVALS: coverage_90=")
    assert cal.interval_line().endswith("(target: 0.88 <= coverage_90 <= 0.92)")
    assert set(calibration_figures(cal)) == {"reliability_diagram.png", "di_histogram.png"}

    write_calibration(cal, str(tmp_path))
    assert cal.meta_fields() == {"intervals": "intervals.json", "aoa": "aoa.npz"}
    assert load_calibrations(tmp_path / "intervals.json")["soc_g_kg"].quantile(0.9) == pytest.approx(soc.quantile(0.9))
    assert load_aoa(tmp_path / "aoa.npz").threshold == pytest.approx(cal.aoa.threshold)

    per_fold = pd.DataFrame({"model": "finetuned", "target": "", "fold": [0, 1, 2], "n": 30, "rmse": 1.0})
    merged = with_intervals(per_fold, cal)
    np.testing.assert_allclose(merged["coverage_90"], cal.per_fold["coverage_90"])


def test_one_scored_fold_gives_no_calibration() -> None:
    table = pd.DataFrame({"id": np.arange(20), "fold": np.arange(20) % 2})
    predictions = np.where(table["fold"] == 0, 1.0, np.nan)
    labels, oof = {"soc_g_kg": np.ones(20)}, {"soc_g_kg": predictions}
    cal = calibrate_bundle(tiny_bundle(), RowSource(), table, labels, oof, CalibrationConfig())
    assert cal.meta_fields() == {} and cal.metrics() == {}
    per_fold = pd.DataFrame({"model": "m", "target": "", "fold": [0], "n": 10, "rmse": 1.0})
    assert with_intervals(per_fold, cal) is per_fold
