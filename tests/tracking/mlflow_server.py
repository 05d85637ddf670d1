"""A real ``mlflow server`` process on a fixed 127.0.0.1 port that tests can stop and start again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class MlflowServer:
    """``mlflow server`` over one SQLite file on a fixed port: a restart serves the same runs, like a real one.

    `stop` kills the server's whole process group (a crash: connections are refused at once).
    """

    def __init__(self, root: Path, port: int, artifacts: str, env: dict[str, str] | None = None) -> None:
        self.root, self.port, self.artifacts = root, port, artifacts
        self.env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        self.uri = f"http://127.0.0.1:{port}"
        self.log = root / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 120) -> None:
        """Start serving (again, on the same port and database) and wait until /health answers."""
        mlflow = Path(sys.executable).with_name("mlflow")
        cmd = [str(mlflow), "server", "--workers", "1", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += [
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            self.artifacts,
        ]
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2)
                return
            except OSError as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}") from exc
                time.sleep(0.3)

    def stop(self) -> None:
        """Kill the server (all its processes) and wait until it is gone."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=30)
        self._proc = None
