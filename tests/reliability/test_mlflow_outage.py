"""MLflow tracking server down at the start or mid-run: clear early failure, or spooled calls delivered later.

A real ``mlflow server`` is killed and started again on the same port over the same SQLite database.
"""

from __future__ import annotations

import logging
import pickle
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from soilnet.cli.tracking import app
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.outage import TrackingUnavailableError
from soilnet.tracking.runs import RunTracker
from soilnet.tracking.spool import Spool
from tests.conftest import free_port
from tests.tracking.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow


def config(uri: str, tmp_path: Path, **fields) -> TrackingConfig:
    """Tracking into a fresh experiment with short waits; spool under the test's folder."""
    base = {"experiment": f"outage-{uuid.uuid4().hex[:8]}", "retry_s": 0.2, "request_timeout_s": 2}
    return TrackingConfig(uri=uri, spool_dir=str(tmp_path / "spool"), **{**base, **fields})


def losses(tracker: RunTracker) -> dict[int, float]:
    """The run's ``loss`` history in MLflow, by step."""
    return {m.step: m.value for m in MlflowClient(tracking_uri=tracker.uri).get_metric_history(tracker.run_id, "loss")}


def log_epochs(tracker: RunTracker, steps: range) -> None:
    for step in steps:
        tracker.log_metrics({"loss": 1.0 / step, "epoch": step}, step=step)


@pytest.fixture
def up(restartable_mlflow: MlflowServer) -> MlflowServer:
    """The module's server, running when the test starts."""
    if not restartable_mlflow.running:
        restartable_mlflow.start()
    return restartable_mlflow


@pytest.mark.timeout(60)  # MLflow's own retries would take minutes: the bound is what ends these
def test_server_down_at_start_fails_at_once_or_after_the_bounded_wait_naming_the_uri(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnavailableError) as fail:
        RunTracker.start(config(dead, tmp_path, on_unavailable="fail"), str(tmp_path), "r")
    assert dead in str(fail.value) and "tracking.on_unavailable" in str(fail.value)
    with socket.socket() as silent:  # accepts connections, never answers: every request times out
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TrackingUnavailableError) as waited:
            RunTracker.start(config(uri, tmp_path, start_timeout_s=2, request_timeout_s=1), str(tmp_path), "r")
    assert uri in str(waited.value) and "tracking.start_timeout_s = 2 s" in str(waited.value)


def test_server_killed_mid_run_then_back_loses_nothing(up, tmp_path, caplog):
    cfg = config(up.uri, tmp_path)
    tracker = RunTracker.start(cfg, str(tmp_path), "mid-run")
    tracker.log_params({"optim": {"lr": 0.01}})
    log_epochs(tracker, range(1, 4))
    up.stop()
    worker = (  # the rank-0 Ray Train worker gets the tracker pickled; it logs (and spools) in its own process
        "import pickle, sys\n"
        "tracker = pickle.loads(sys.stdin.buffer.read())\n"
        "for step in (4, 5, 6):\n"
        "    tracker.log_metrics({'val_loss': 2.0 / step}, step=step)\n"
    )
    subprocess.run([sys.executable, "-c", worker], input=pickle.dumps(tracker), check=True, timeout=120)
    (worker_spool,) = Spool.of_run(cfg.spool_dir, tracker.run_id)
    assert [r["metrics"][0][3] for r in worker_spool.records()] == [4, 5, 6]
    with caplog.at_level(logging.WARNING, logger="soilnet.tracking.runs"):
        log_epochs(tracker, range(4, 7))  # training goes on
        tracker.set_tags({"soilnet.checkpoint": "s3://b/ckpt"})
        tracker.log_text("fold,rmse\n0,1.5\n", "per_fold.csv")
        tracker.log_params({"n_points": 200})
    assert caplog.text.count("unreachable") == 1 and str(tracker.spool.path) in caplog.text  # warned once
    spooled = tracker.spool.records()
    assert [r["op"] for r in spooled] == ["log_metrics"] * 3 + ["set_tags", "log_text", "log_params"]
    stamps = [r["metrics"][0][2] for r in spooled[:3]]
    up.start()
    log_epochs(tracker, range(7, 9))  # the first call that gets through delivers the spool first
    assert not tracker.spool.exists() and worker_spool.exists()  # a call delivers its own process's spool
    tracker.finish()  # and finish every process's spool of the run on this machine
    assert not worker_spool.exists()
    client = MlflowClient(tracking_uri=up.uri)
    run = client.get_run(tracker.run_id)
    assert losses(tracker) == {step: 1.0 / step for step in range(1, 9)}
    assert {m.step: m.value for m in client.get_metric_history(tracker.run_id, "val_loss")} == {
        step: 2.0 / step for step in (4, 5, 6)
    }
    history = {m.step: m.timestamp for m in client.get_metric_history(tracker.run_id, "loss")}
    assert [history[step] for step in (4, 5, 6)] == stamps  # the original timestamps, not the delivery's
    assert run.info.status == "FINISHED"
    assert run.data.params == {"optim.lr": "0.01", "n_points": "200"}
    assert run.data.tags["soilnet.checkpoint"] == "s3://b/ckpt"
    assert client.download_artifacts(tracker.run_id, "per_fold.csv", str(tmp_path)).endswith("per_fold.csv")
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_server_still_down_at_finish_leaves_the_spool_for_tracking_flush(up, tmp_path, caplog):
    cfg = config(up.uri, tmp_path, finish_timeout_s=1)
    tracker = RunTracker.start(cfg, str(tmp_path), "down-at-end")
    log_epochs(tracker, range(1, 3))
    up.stop()
    log_epochs(tracker, range(3, 5))
    with caplog.at_level(logging.ERROR, logger="soilnet.tracking.runs"):
        tracker.finish()
    assert f"soilnet tracking flush {cfg.spool_dir}" in caplog.text
    assert [r["op"] for r in tracker.spool.records()] == ["log_metrics", "log_metrics", "set_terminated"]
    flush = ["flush", cfg.spool_dir, "--set", "tracking.finish_timeout_s=0"]
    still_down = CliRunner().invoke(app, flush)
    assert still_down.exit_code == 1 and up.uri in still_down.output
    assert tracker.spool.exists()
    up.start()
    delivered = CliRunner().invoke(app, flush)
    assert delivered.exit_code == 0, delivered.output
    assert "delivered 3 tracking calls" in delivered.output
    assert losses(tracker) == {step: 1.0 / step for step in range(1, 5)}
    assert MlflowClient(tracking_uri=up.uri).get_run(tracker.run_id).info.status == "FINISHED"
    assert list(Path(cfg.spool_dir).iterdir()) == []


def test_fail_mode_mid_run_raises_naming_the_uri_and_spools_nothing(up, tmp_path):
    cfg = config(up.uri, tmp_path, on_unavailable="fail")
    tracker = RunTracker.start(cfg, str(tmp_path), "strict")
    log_epochs(tracker, range(1, 2))
    up.stop()
    with pytest.raises(TrackingUnavailableError) as down:
        log_epochs(tracker, range(2, 3))
    assert up.uri in str(down.value) and "log_metrics" in str(down.value) and "'fail'" in str(down.value)
    assert not Path(cfg.spool_dir).exists()


def test_spool_mode_waits_at_start_for_a_server_that_comes_back(restartable_mlflow, tmp_path):
    server = restartable_mlflow
    if server.running:  # left down by the test before, else taken down now
        server.stop()
    threading.Timer(2, server.start).start()
    tracker = RunTracker.start(config(server.uri, tmp_path, start_timeout_s=110), str(tmp_path), "late")
    assert MlflowClient(tracking_uri=server.uri).get_run(tracker.run_id).info.status == "RUNNING"
