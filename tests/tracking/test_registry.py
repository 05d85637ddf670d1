"""The registry on a real MLflow server: versions registered, the champion alias moved only on a win."""

from __future__ import annotations

import uuid

import pytest

from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.registry import BUNDLE_URL_TAG, promote
from soilnet.tracking.runs import RunTracker


def _cv_run(cfg: TrackingConfig, rmse: float) -> str:
    tracker = RunTracker.start(cfg, "unused", "cv")
    tracker.log_metrics({"cv_rmse_mean": rmse})
    tracker.set_tags({BUNDLE_URL_TAG: "s3://nowhere/bundle"})
    tracker.log_text("{}", "bundle/meta.json")
    tracker.finish()
    return tracker.run_id


def test_champion_moves_only_when_the_cv_metric_improves(mlflow_server):
    from mlflow import MlflowClient

    cfg = TrackingConfig(
        uri=mlflow_server, experiment=f"e-{uuid.uuid4().hex[:6]}", registered_model=f"m-{uuid.uuid4().hex[:6]}"
    )
    first = promote(cfg, "unused", _cv_run(cfg, 5.0))
    assert first.promoted and first.previous is None
    worse = promote(cfg, "unused", _cv_run(cfg, 6.0))
    assert not worse.promoted and worse.previous == 5.0
    better = promote(cfg, "unused", _cv_run(cfg, 4.0))
    assert better.promoted and better.previous_version == first.version
    client = MlflowClient(tracking_uri=mlflow_server)
    assert client.get_model_version_by_alias(cfg.registered_model, "champion").version == better.version
    assert len(client.search_model_versions(f"name='{cfg.registered_model}'")) == 3


def test_promoting_a_run_without_cv_metrics_names_the_metric(mlflow_server):
    cfg = TrackingConfig(uri=mlflow_server, experiment="bad-runs")
    tracker = RunTracker.start(cfg, "unused", "not-cv")
    with pytest.raises(ValueError, match="no metric 'cv_rmse_mean'"):
        promote(cfg, "unused", tracker.run_id)
