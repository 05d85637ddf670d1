"""A real MLflow server on 127.0.0.1 (artifacts on the S3 endpoint)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import free_port
from tests.tracking.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1 (SQLite backend, artifacts proxied to the S3 endpoint)."""
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="mlflow-artifacts")
    server = MlflowServer(
        tmp_path_factory.mktemp("mlflow"), free_port(), "s3://mlflow-artifacts", {"MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    )
    server.start()
    os.environ["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint
    yield server.uri
    server.stop()
