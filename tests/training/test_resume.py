"""A Ray Train worker really killed mid-epoch: the run resumes from its last checkpoint, one MLflow run."""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import cloudpickle
import pytest

from soilnet.config import DataConfig
from soilnet.data.stream_config import StreamConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import PretrainConfig, TrainConfig
from soilnet.training.pretrain import run_pretrain


def kill_once(marker: str, at_step: int, rank: int, step: int) -> None:
    """SIGKILL the rank-1 worker at `at_step`, the first time only (the marker file remembers).

    It waits a few seconds first, so the controller has registered the checkpoints reported before.
    """
    if rank == 1 and step == at_step and not os.path.exists(marker):
        Path(marker).touch()
        time.sleep(5)
        os.kill(os.getpid(), signal.SIGKILL)


pytestmark = pytest.mark.slow


def test_killed_worker_resumes_from_checkpoint_with_the_right_step_count(ray_local, tiny_demo, tiny_recipe, tmp_path):
    import sys

    from mlflow import MlflowClient

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = str(tmp_path / "killed")
    data = DataConfig(root=tiny_demo.root, runs=str(tmp_path / "runs"))
    stream = StreamConfig(
        batch_size=8, read_batch_size=16, buffer_px=2, n_unlabelled=48, reader_concurrency=1, shuffle="shard"
    )
    cfg = PretrainConfig(recipe=tiny_recipe, epochs=3, steps_per_epoch=2, stream=stream)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}", experiment="resume")
    result = run_pretrain(
        data, TrainConfig(num_workers=2, max_failures=1), cfg, tracking, on_step=functools.partial(kill_once, marker, 5)
    )

    assert os.path.exists(marker)  # the kill really happened
    assert result.metrics["step"] == 6 and result.metrics["epoch"] == 3
    client = MlflowClient(tracking_uri=tracking.uri)
    experiment = client.get_experiment_by_name("resume")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [result.run_id]
    history = client.get_metric_history(result.run_id, "step")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert "embedding_std" in runs[0].data.metrics  # SSL collapse monitor logged
    assert (Path(result.encoders) / "image_encoder.safetensors").exists()
