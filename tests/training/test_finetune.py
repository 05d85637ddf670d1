"""Fine-tuning folds: no test-fold row reaches training, validation or normalisation (checked on coordinates)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

import soilnet.training.job as job_module
from soilnet.data.folds import FoldConfig
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.finetune import run_cross_validation
from soilnet.training.samples import CachedSource


@pytest.mark.slow
def test_test_fold_rows_never_reach_training_or_normalisation(ray_local, tiny_demo, tiny_recipe, tmp_path, monkeypatch):
    seen: dict[str, list] = {"train": [], "norm": []}
    batches = CachedSource.batches
    fit = job_module.fit_normalisation

    def record_batches(self, table, epochs, world_size, stats, name):
        seen["train"].append((table[["id", "x", "y"]].copy(), stats))
        return batches(self, table, epochs, world_size, stats, name)

    def record_fit(table, read, *args, **kwargs):
        seen["norm"].append(table[["x", "y"]].to_numpy(dtype=np.float64))
        return fit(table, read, *args, **kwargs)

    monkeypatch.setattr(CachedSource, "batches", record_batches)
    monkeypatch.setattr(job_module, "fit_normalisation", record_fit)
    stream = StreamConfig(batch_size=16, read_batch_size=32, buffer_px=2, n_unlabelled=64, reader_concurrency=1)
    cfg = FinetuneConfig(recipe=tiny_recipe, epochs=1, folds=FoldConfig(k=3), only_folds=[1, 2], stream=stream)
    data = DataConfig(root=tiny_demo.root, runs=str(tmp_path / "runs"))
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    cv = run_cross_validation(data, TrainConfig(num_workers=1), cfg, tracking)

    # input statistics: from unlabelled windows whose centres keep the buffer from every labelled point
    labelled = cv.table[["x", "y"]].to_numpy(dtype=np.float64)
    buffer_m = stream.buffer_px * open_raster_cube(data.url("raster")).grid.res
    assert len(seen["norm"]) == 1 and len(seen["norm"][0]) > 0
    nearest, _ = cKDTree(labelled).query(seen["norm"][0])
    assert nearest.min() >= buffer_m
    assert len(seen["train"]) == 2
    for fold, (train, stats) in zip([1, 2], seen["train"], strict=True):
        test = cv.table.loc[cv.table["fold"] == fold]
        # no training row stands where a test row stands: compared by location, not by id
        gap, _ = cKDTree(test[["x", "y"]].to_numpy(dtype=np.float64)).query(train[["x", "y"]].to_numpy())
        assert len(train) and gap.min() > 0
        assert set(map(tuple, train[["x", "y"]].to_numpy())) <= set(
            map(tuple, cv.table.loc[cv.table["fold"] != fold, ["x", "y"]].to_numpy())
        )
        train_targets = cv.table.set_index("id").loc[sorted(train["id"]), "target"]
        assert stats.target_mean == pytest.approx(train_targets.mean(), rel=1e-5)
    scored = np.isfinite(cv.predictions)
    assert set(cv.table.loc[scored, "fold"]) == {1, 2}
    assert list(cv.per_fold["fold"]) == [1, 2]
    # the bundle is calibrated on the two scored folds (#17): intervals, AOA, table columns
    assert {"coverage_90", "width_90"} <= set(cv.per_fold.columns)
    assert cv.calibration is not None and 0.0 < cv.calibration.summary["coverage_90"] <= 1.0
    meta = json.loads((Path(cv.bundle) / "meta.json").read_text())
    assert (meta["intervals"], meta["aoa"]) == ("intervals.json", "aoa.npz")


def test_freezing_without_pretrained_weights_is_rejected():
    with pytest.raises(ValueError, match=r"freeze_backbone needs finetune\.pretrained"):
        FinetuneConfig(freeze_backbone=True)
