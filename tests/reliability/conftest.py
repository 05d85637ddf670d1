"""Fault injectors for the reliability tests: restartable S3 and MLflow servers, a tiny tmpfs, the ingest generators."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import free_port
from tests.tracking.mlflow_server import MlflowServer

INGEST_FIXTURES = Path(__file__).resolve().parents[1] / "data" / "ingest" / "fixtures.py"
FAKE_KEY_ID = "soilnet-test-key-id"
FAKE_SECRET = "soilnet-test-secret-value"


@pytest.fixture(scope="session")
def gen() -> ModuleType:
    """The ingest input generators (GeoTIFF, NetCDF writers) of ``tests/data/ingest/fixtures.py``."""
    name = "soilnet_tests_ingest_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, INGEST_FIXTURES)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


class RestartableS3:
    """A moto S3 server on a fixed loopback port that can be stopped and started again on the same port.

    moto keeps its buckets in ``moto.backends`` inside this process, so a restarted server serves the
    same objects: exactly what a restarted S3-compatible store with persistent volumes looks like.
    """

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._restart: threading.Thread | None = None

    def start(self) -> None:
        """Start serving (again) on the same port."""
        from moto.server import ThreadedMotoServer

        for _ in range(50):  # the port may linger briefly after a stop
            try:
                server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
                server.start()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"cannot restart S3 on port {self.port}")
        self._server = server

    def stop(self) -> None:
        """Stop serving: connections are refused until `start`."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def outage(self, seconds: float) -> None:
        """Stop now and start again after ``seconds`` in the background."""
        self.stop()
        timer = threading.Timer(seconds, self.start)
        timer.start()
        self._restart = timer

    def wait_up(self) -> None:
        """Block until a scheduled restart has happened."""
        if self._restart is not None:
            self._restart.join()
            self._restart = None

    def bucket(self) -> str:
        """A fresh bucket on this endpoint; returns ``s3://<bucket>``."""
        import boto3

        name = f"soilnet-rel-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return f"s3://{name}"


@pytest.fixture
def restartable_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableS3]:
    """A dedicated S3 endpoint for one test (the session endpoint is never stopped); env points at it."""
    s3 = RestartableS3()
    s3.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    yield s3
    s3.wait_up()
    s3.stop()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted in the test's folder (needs root and mount); skipped where it cannot be mounted."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    mount = shutil.which("mount")
    done = mount and subprocess.run([mount, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True)
    if not done or done.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip() if done else 'no mount'}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture(scope="module")
def restartable_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A dedicated MLflow server (SQLite file, local artifacts) that tests stop and restart on its port.

    Tests leave it running; it is shared by the tests of one module (each uses its own experiment).
    """
    root = tmp_path_factory.mktemp("restartable-mlflow")
    server = MlflowServer(root, free_port(), str(root / "artifacts"))
    server.start()
    yield server
    server.stop()
