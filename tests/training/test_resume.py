"""A Ray Train worker really killed mid-epoch: the run resumes from its last checkpoint, one MLflow run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from soilnet.training.config import TrainConfig
from soilnet.training.pretrain import run_pretrain

KILLS = Path(__file__).resolve().parents[1] / "reliability" / "worker_kills.py"
spec = importlib.util.spec_from_file_location("soilnet_tests_worker_kills", KILLS)
worker_kills = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(worker_kills)  # type: ignore[union-attr]

pytestmark = pytest.mark.slow


def test_killed_worker_resumes_from_checkpoint_with_the_right_step_count(ray_local, tiny_demo, tiny_recipe, tmp_path):
    from mlflow import MlflowClient

    data, cfg, tracking = worker_kills.tiny_pretrain(tiny_demo.root, tiny_recipe, tmp_path, "resume")
    kill = worker_kills.killer(tmp_path, 5)
    result = run_pretrain(data, TrainConfig(num_workers=2, max_failures=1), cfg, tracking, on_step=kill)

    assert worker_kills.kills(tmp_path) == [5]  # the kill really happened
    assert result.metrics["step"] == 6 and result.metrics["epoch"] == 3
    client = MlflowClient(tracking_uri=tracking.uri)
    experiment = client.get_experiment_by_name("resume")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [result.run_id]
    history = client.get_metric_history(result.run_id, "step")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert "embedding_std" in runs[0].data.metrics  # SSL collapse monitor logged
    assert (Path(result.encoders) / "image_encoder.safetensors").exists()
