"""Learning on a generated demo region: fine-tuned fold models beat the mean and a centre-pixel forest.

The demo SOC depends on ~1 km context (mean greenness and forest share) by construction, which a
centre pixel cannot see but a 32 px (960 m) window can. The demo recipe (tiny ViT + climate
Transformer) is trained from scratch on 3 spatial folds for a few epochs on Ray Train; its
out-of-fold RMSE must beat the training-fold mean and the centre-pixel random forest on the same
folds, with every figure logged to an MLflow SQLite database.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.folds import FoldConfig
from soilnet.data.raster_cube import RasterLayout
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.evaluation.baselines import BaselineConfig, RandomForestConfig
from soilnet.evaluation.metrics import rmse
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import EvaluateConfig, FinetuneConfig, OptimConfig, TrainConfig
from soilnet.training.evaluate import compare_with_baselines
from soilnet.training.finetune import run_cross_validation

DEMO_RECIPE = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "demo-recipe.yaml"


def mean_predictor_rmse(targets: np.ndarray, folds: np.ndarray) -> float:
    """Mean over folds of the RMSE of predicting each test fold by the mean of the other folds."""
    tests = np.unique(folds)
    scores = [rmse(targets[folds == k], np.full((folds == k).sum(), targets[folds != k].mean())) for k in tests]
    return float(np.mean(scores))


@pytest.mark.slow
def test_finetuned_model_beats_mean_and_centre_pixel_forest(ray_local, tmp_path):
    torch.set_num_threads(1)
    region = DemoConfig(width_km=12, height_km=12, n_points=600, seed=1)
    paths = generate_demo_region(region, str(tmp_path / "region"), RasterLayout(inner_chunk=32, shard=128))
    data = DataConfig(root=paths.root, runs=str(tmp_path / "runs"))
    stream = StreamConfig(batch_size=32, read_batch_size=64, buffer_px=4, n_unlabelled=256, reader_concurrency=1)
    cfg = FinetuneConfig(
        recipe=str(DEMO_RECIPE),
        epochs=6,
        patience=6,
        folds=FoldConfig(k=3),
        optim=OptimConfig(lr=1e-3),
        stream=stream,
    )
    train = TrainConfig(num_workers=1, cpus_per_worker=1, threads_per_worker=2)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}", artifacts=str(tmp_path / "mlartifacts"))
    cv = run_cross_validation(data, train, cfg, tracking)

    tracker = RunTracker.for_run(tracking, data.root, cv.run_id)
    forest = BaselineConfig(models=["random_forest"], n_jobs=2, random_forest=RandomForestConfig(n_estimators=100))
    comparison = compare_with_baselines(
        cv, cv.source, EvaluateConfig(baselines=forest, ssl_features=False), None, tracker, cfg.target
    )
    targets, folds = cv.table["target"].to_numpy(np.float64), cv.table["fold"].to_numpy()
    tracker.log_metrics({"mean_predictor.rmse_mean": mean_predictor_rmse(targets, folds)})

    logged = tracker.metrics()
    model, forest_rmse = logged["finetuned.rmse_mean"], logged["random_forest.rmse_mean"]
    mean_rmse = logged["mean_predictor.rmse_mean"]
    assert np.isfinite(cv.predictions).all()
    assert logged["cv_rmse_mean"] == pytest.approx(model)
    assert model < forest_rmse < mean_rmse, comparison.table
