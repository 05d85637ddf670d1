"""Recognising an unreachable tracking server, bounding MLflow's HTTP waits, retrying while it is down."""

from __future__ import annotations

import os

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from soilnet.tracking.outage import bounded_requests, is_unavailable, retry_while_unavailable
from tests.conftest import free_port


def test_a_refused_connection_is_unavailability_and_a_refused_request_is_not():
    with bounded_requests(2), pytest.raises(MlflowException) as refused:
        MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}").get_experiment_by_name("x")
    assert is_unavailable(refused.value)
    assert is_unavailable(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "db down"}))
    assert not is_unavailable(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}))
    assert not is_unavailable(MlflowException("local mistake"))


def test_bounded_requests_turns_mlflow_retries_off_and_restores_the_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with bounded_requests(3), bounded_requests(5):
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_retries_while_unavailable_then_gives_up_and_never_retries_other_errors():
    attempts = []

    def twice_down() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise requests.ConnectionError("refused")
        return "run-id"

    assert retry_while_unavailable(twice_down, 60, 0.01, "test") == "run-id" and len(attempts) == 3

    def always_down() -> None:
        raise requests.ConnectionError("refused")

    with pytest.raises(requests.ConnectionError):
        retry_while_unavailable(always_down, 0.05, 0.01, "test")

    def wrong() -> None:
        attempts.append(1)
        raise ValueError("bad request")

    attempts.clear()
    with pytest.raises(ValueError):
        retry_while_unavailable(wrong, 60, 0.01, "test")
    assert len(attempts) == 1
