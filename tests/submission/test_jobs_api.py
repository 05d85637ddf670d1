"""`soilnet submit` against a real Ray head (dashboard + Jobs API) started on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soilnet.cli.submit import app
from soilnet.submission import jobs_api
from soilnet.submission.config import SubmissionConfig
from soilnet.submission.launch import CONFIG_ENV_VAR, job_module, launcher_entrypoint, read_config_text

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_head(proc: subprocess.Popen[bytes], temp_dir: str) -> None:
    """Stop this head only: `ray start --block` tears its processes down on SIGTERM; then any left."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    for pid in pids_mentioning(temp_dir):
        os.kill(pid, signal.SIGKILL)


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions ``text`` (this head's temp dir), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head with the dashboard on free loopback ports, token auth off; yields its URL."""
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths are length-limited
    dashboard = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1", "--port", str(free_port()),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
        "--num-cpus", "1", "--object-store-memory", str(100 * 2**20),
        "--temp-dir", temp_dir, "--disable-usage-stats",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/jobs/", timeout=5):  # the Jobs API, not only the dashboard
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not start (exit {proc.poll()}); logs in {temp_dir}")
                time.sleep(1)
        yield url
    finally:
        stop_head(proc, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit(url: str, config: Path, *extra: str) -> object:
    env = {"RAY_AUTH_MODE": "disabled"}
    return CliRunner().invoke(
        app, ["submit", "soilnet.submission.selfcheck", "-c", str(config), "-a", url, *extra], env=env
    )


@pytest.mark.slow
def test_submit_runs_a_job_to_success_and_a_failing_job_to_failure(ray_head, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(f"data:\n  root: {tmp_path / 'workspace'}\n")
    result = submit(ray_head, good)
    assert result.exit_code == 0, result.output
    assert any(line.startswith("soilnet-selfcheck-") for line in result.stdout.splitlines())  # the job id
    assert "all checks passed" in result.stdout
    assert "SUCCEEDED" in result.output

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"data:\n  root: {tmp_path}\n  points: {tmp_path / 'missing.parquet'}\n")
    dead_mlflow = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app,
        ["submit", "soilnet.submission.selfcheck", "-c", str(bad), "-a", ray_head],
        env={"RAY_AUTH_MODE": "disabled", "MLFLOW_TRACKING_URI": dead_mlflow},
    )
    assert result.exit_code == 1, result.output
    assert "FAIL data.points" in result.stdout
    assert f"FAIL MLflow {dead_mlflow}" in result.stdout  # the endpoint variable reached the job
    assert "FAILED" in result.output


def test_runtime_env_carries_the_config_and_endpoints_but_no_credentials(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  root: s3://soilnet\n")
    environ = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "AWS_SECRET_ACCESS_KEY": "hush", "AWS_REGION": "eu"}
    env = jobs_api.runtime_env(read_config_text(config), SubmissionConfig().forward_env, environ)
    assert env == {
        "env_vars": {
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "AWS_REGION": "eu",
            CONFIG_ENV_VAR: "data:\n  root: s3://soilnet\n",
        }
    }


def test_entrypoints_and_exit_codes():
    assert job_module("map") == "jobs.map"
    assert job_module("soilnet.submission.selfcheck") == "soilnet.submission.selfcheck"
    assert launcher_entrypoint("map", ["--set", "a=b c"]) == "python -m soilnet.submission.launch map --set 'a=b c'"
    with pytest.raises(ValueError, match="not a job name"):
        job_module("map; rm -rf /")
    assert [
        jobs_api.exit_code(s, c) for s, c in [("SUCCEEDED", 0), ("FAILED", 7), ("FAILED", None), ("STOPPED", None)]
    ] == [0, 7, 1, 3]
    with pytest.raises(ValueError, match="not terminal"):
        jobs_api.exit_code("RUNNING", None)


def test_bad_config_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.yaml not found"):
        read_config_text(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match=r"list\.yaml: expected a mapping"):
        read_config_text(listy)
    result = CliRunner().invoke(app, ["submit", "map", "-c", str(listy), "-a", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "list.yaml" in result.output
