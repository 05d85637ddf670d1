"""Same seed, same numbers: a tiny pretrain + fine-tune, run twice with 2 workers, repeats to the bit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from soilnet.data.folds import FoldConfig
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import FinetuneConfig, PretrainConfig, TrainConfig
from soilnet.training.finetune import run_cross_validation
from soilnet.training.pretrain import run_pretrain
from soilnet.training.trainer import ordered_ingest, worker_threads


def test_workers_use_a_thread_count_fixed_by_the_config():
    assert worker_threads(TrainConfig(cpus_per_worker=0.5)) == 1
    assert worker_threads(TrainConfig(cpus_per_worker=3)) == 3
    assert worker_threads(TrainConfig(cpus_per_worker=3, threads_per_worker=2)) == 2


def test_train_datasets_keep_their_order():
    assert ordered_ingest()._user_execution_options.preserve_order


def _weights(runs: Path) -> dict[str, str]:
    return {str(p.relative_to(runs)): hashlib.sha256(p.read_bytes()).hexdigest() for p in runs.rglob("*.safetensors")}


def _run(root: str, recipe: str, runs: Path) -> dict:
    """Streamed SSL pretraining (shard shuffle) then cached fine-tuning of one fold, 2 workers each."""
    data = DataConfig(root=root, runs=str(runs))
    tracking = TrackingConfig(uri=f"sqlite:///{runs / 'mlruns.db'}")
    stream = StreamConfig(batch_size=16, read_batch_size=16, buffer_px=2, n_unlabelled=64, reader_concurrency=2)
    pre = run_pretrain(
        data,
        TrainConfig(num_workers=2, data_source="stream"),
        PretrainConfig(recipe=recipe, epochs=2, stream=stream.model_copy(update={"shuffle": "shard"})),
        tracking,
    )
    cv = run_cross_validation(
        data,
        TrainConfig(num_workers=2, data_source="cache"),
        FinetuneConfig(
            recipe=recipe, epochs=2, folds=FoldConfig(k=3), only_folds=[1], stream=stream, pretrained=pre.encoders
        ),
        tracking,
    )
    return {"pretrain": pre.metrics, "cv": cv.per_fold.to_dict(), "oof": cv.predictions, "weights": _weights(runs)}


@pytest.mark.slow
def test_two_runs_with_the_same_seed_give_identical_metrics_and_weights(ray_local, tiny_demo, tiny_recipe, tmp_path):
    first = _run(tiny_demo.root, tiny_recipe, tmp_path / "first")
    second = _run(tiny_demo.root, tiny_recipe, tmp_path / "second")
    assert first["weights"] and first["weights"] == second["weights"]
    assert first["pretrain"] == second["pretrain"]
    assert first["cv"] == second["cv"]
    np.testing.assert_array_equal(first["oof"], second["oof"])
