"""Tracking URI resolution and flattened parameters (no server needed)."""

from __future__ import annotations

import pytest

from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import MAX_PARAM_LENGTH, flatten_params, tracking_uri, ui_command


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
