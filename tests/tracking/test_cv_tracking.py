"""A cross-validation run with 2 Ray Train workers, tracked on the MLflow server, checkpoints on S3."""

from __future__ import annotations

import numpy as np
import pytest

from soilnet import storage
from soilnet.data.folds import FoldConfig
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.recipes.bundle import load_bundle
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.registry import BUNDLE_URL_TAG
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.finetune import run_cross_validation

pytestmark = pytest.mark.slow


def test_two_worker_fold_is_tracked_with_nested_runs_and_s3_artifacts(
    ray_local, mlflow_server, s3_bucket, tiny_demo, tiny_recipe
):
    from mlflow import MlflowClient

    data = DataConfig(root=tiny_demo.root, runs=f"{s3_bucket}/runs")
    stream = StreamConfig(batch_size=16, read_batch_size=32, buffer_px=2, n_unlabelled=64, reader_concurrency=1)
    cfg = FinetuneConfig(recipe=tiny_recipe, epochs=2, folds=FoldConfig(k=3), only_folds=[0], stream=stream)
    tracking = TrackingConfig(uri=mlflow_server, experiment="cv-tracking")
    cv = run_cross_validation(data, TrainConfig(num_workers=2), cfg, tracking)

    client = MlflowClient(tracking_uri=mlflow_server)
    parent = client.get_run(cv.run_id)
    assert parent.data.tags[BUNDLE_URL_TAG] == cv.bundle == f"{s3_bucket}/runs/finetune/bundle"
    assert np.isfinite(parent.data.metrics["cv_rmse_mean"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{cv.run_id}'")
    assert [c.data.tags["soilnet.fold"] for c in children] == ["0"]
    child = children[0]
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")] == [1, 2]
    assert "test_rmse" in child.data.metrics and "sys.torch" in child.data.tags
    assert {a.path for a in client.list_artifacts(cv.run_id, "bundle")} >= {
        "bundle/meta.json",
        "bundle/fold_0.safetensors",
    }
    assert storage.exists(f"{s3_bucket}/runs/finetune/fold_0")  # Ray Train checkpoints on S3

    bundle = load_bundle(cv.bundle)
    test = cv.table[cv.table["fold"] == 0].iloc[:4]
    sample = cv.source.read(test)
    mean, std = bundle.predict(sample["image"], sample["climate"])
    np.testing.assert_allclose(mean[:, 0], cv.predictions[test.index], rtol=1e-4, atol=1e-4)
    assert (std == 0).all()  # one fold model, no variance head
