"""Ray Train worker processes really killed (SIGKILL) twice in one run (issue #9).

With ``train.max_failures=2`` the run resumes and ends with the planned steps, in one MLflow run whose
per-epoch metrics cover every epoch, and with the very model an unkilled run trains (cached samples on
CPU: every epoch's rows and random draws are functions of the seed and the epoch). With
``max_failures=1`` the second kill fails the job with an error and a FAILED run, not a hang.
"""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from pathlib import Path

import pytest

from soilnet.training.config import TrainConfig
from soilnet.training.pretrain import run_pretrain

KILLS = Path(__file__).resolve().parent / "worker_kills.py"
spec = importlib.util.spec_from_file_location("soilnet_tests_worker_kills", KILLS)
worker_kills = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(worker_kills)  # type: ignore[union-attr]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
EPOCHS, STEPS = 3, 2
ENCODERS = ("image_encoder.safetensors", "climate_encoder.safetensors")


def last_per_step(history) -> dict[int, float]:
    """The value MLflow shows for each step: the last one logged."""
    return {m.step: m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))}


def test_two_kills_in_two_epochs_resume_to_the_unkilled_model_in_one_run(ray_local, tiny_demo, tiny_recipe, tmp_path):
    from mlflow import MlflowClient
    from safetensors.torch import load_file

    killed, plain = tmp_path / "killed", tmp_path / "plain"
    killed.mkdir(), plain.mkdir()
    data, cfg, tracking = worker_kills.tiny_pretrain(tiny_demo.root, tiny_recipe, killed, "kills", EPOCHS, STEPS)
    # Step 2 ends epoch 1: rank 0 logs the epoch, then its report never completes (no checkpoint yet).
    # Step 3 is the middle of epoch 2: the group resumes from the epoch-1 checkpoint.
    kill = worker_kills.killer(killed, 2, 3)
    result = run_pretrain(data, TrainConfig(num_workers=2, max_failures=2), cfg, tracking, on_step=kill)

    assert worker_kills.kills(killed) == [2, 3]
    assert result.metrics["epoch"] == EPOCHS and result.metrics["step"] == EPOCHS * STEPS
    assert math.isfinite(result.metrics["train_loss"])
    client = MlflowClient(tracking_uri=tracking.uri)
    runs = client.search_runs([client.get_experiment_by_name("kills").experiment_id])
    assert [(r.info.run_id, r.info.status) for r in runs] == [(result.run_id, "FINISHED")]
    epochs = client.get_metric_history(result.run_id, "epoch")
    assert last_per_step(epochs) == {e: float(e) for e in range(1, EPOCHS + 1)}  # every epoch, no gap
    # An epoch logged whose report never completed is logged again when it re-runs: at most once more,
    # and only epoch 1 (a restart from scratch after the second kill would log it a third time).
    extra = Counter(m.step for m in epochs) - Counter(range(1, EPOCHS + 1))
    assert set(extra) <= {1} and extra[1] <= 1
    steps = last_per_step(client.get_metric_history(result.run_id, "step"))
    assert steps == {e: float(e * STEPS) for e in range(1, EPOCHS + 1)}
    assert runs[0].data.metrics["train_loss"] == result.metrics["train_loss"]

    data, cfg, reference = worker_kills.tiny_pretrain(tiny_demo.root, tiny_recipe, plain, "plain", EPOCHS, STEPS)
    unkilled = run_pretrain(data, TrainConfig(num_workers=2, max_failures=0), cfg, reference)
    reference_client = MlflowClient(tracking_uri=reference.uri)
    for key in ("train_loss", "lr", "embedding_std"):  # the whole trajectory, schedule included
        got = last_per_step(client.get_metric_history(result.run_id, key))
        assert got == last_per_step(reference_client.get_metric_history(unkilled.run_id, key)), key
    for name in ENCODERS:
        got, want = load_file(str(Path(result.encoders) / name)), load_file(str(Path(unkilled.encoders) / name))
        assert got.keys() == want.keys() and all(got[k].equal(want[k]) for k in want), name


def test_more_kills_than_max_failures_fail_the_job_and_its_run(ray_local, tiny_demo, tiny_recipe, tmp_path):
    from mlflow import MlflowClient
    from ray.train import TrainingFailedError

    data, cfg, tracking = worker_kills.tiny_pretrain(tiny_demo.root, tiny_recipe, tmp_path, "too-many-kills")
    kill = worker_kills.killer(tmp_path, 1, 2)
    with pytest.raises(TrainingFailedError) as failed:
        run_pretrain(data, TrainConfig(num_workers=2, max_failures=1), cfg, tracking, on_step=kill)

    assert worker_kills.kills(tmp_path) == [1, 2]
    message = str(failed.value)
    assert "Rank 1" in message and "died" in message, message
    client = MlflowClient(tracking_uri=tracking.uri)
    runs = client.search_runs([client.get_experiment_by_name("too-many-kills").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
