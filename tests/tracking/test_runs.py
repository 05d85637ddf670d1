"""Tracking URI resolution, flattened parameters, tracker pickling and spool folders (no server needed)."""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import pytest

from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import (
    MAX_PARAM_LENGTH,
    RunTracker,
    flatten_params,
    spool_folder,
    tracking_uri,
    ui_command,
)


def test_flatten_params_nests_with_dots_and_cuts_long_values():
    flat = flatten_params({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x" * (MAX_PARAM_LENGTH + 10)})
    assert flat == {"a.b": "1", "a.c.d": "[1, 2]", "e": "x" * MAX_PARAM_LENGTH}


def test_tracking_uri_order_config_then_env_then_workspace_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(TrackingConfig(), str(tmp_path / "ws")) == f"sqlite:///{tmp_path / 'ws' / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert tracking_uri(TrackingConfig(), str(tmp_path)) == "http://mlflow:5000"
    assert tracking_uri(TrackingConfig(uri="http://other:1"), str(tmp_path)) == "http://other:1"
    assert ui_command("sqlite:////x/mlruns.db") == "mlflow ui --backend-store-uri sqlite:////x/mlruns.db"


def test_s3_workspace_keeps_sqlite_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(TrackingConfig(), "s3://bucket/ws") == f"sqlite:///{tmp_path / 'mlruns.db'}"


def test_unknown_promote_metric_is_rejected():
    with pytest.raises(ValueError, match="promote_metric"):
        TrackingConfig(promote_metric="accuracy")


def test_tracker_pickles_with_its_outage_settings_and_spool_folder(tmp_path):
    cfg = TrackingConfig(on_unavailable="fail", request_timeout_s=3)
    tracker = RunTracker.for_run(cfg, str(tmp_path / "ws"), "abc", uri="http://mlflow:5000")
    copy = pickle.loads(pickle.dumps(tracker))  # what Ray does to send it to the rank-0 worker
    assert (copy.uri, copy.run_id, copy.cfg, copy.spool_dir) == (
        "http://mlflow:5000",
        "abc",
        cfg,
        str(tmp_path / "ws" / "mlflow-spool"),
    )


def test_spool_folder_is_the_config_else_the_local_workspace_else_a_temp_folder(tmp_path):
    assert spool_folder(TrackingConfig(spool_dir=str(tmp_path / "s")), "s3://b/ws") == str(tmp_path / "s")
    assert spool_folder(TrackingConfig(), str(tmp_path)) == str(tmp_path / "mlflow-spool")
    assert spool_folder(TrackingConfig(), "s3://b/ws") == str(Path(tempfile.gettempdir()) / "soilnet-mlflow-spool")
    with pytest.raises(ValueError, match="spool_dir must be a local folder"):
        TrackingConfig(spool_dir="s3://b/spool")
