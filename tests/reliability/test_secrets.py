"""No credential in the repository, in the logs of a run, or in what the run writes (known fake credentials)."""

from __future__ import annotations

import importlib
import json
import logging
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soilnet import storage
from soilnet.cli import app

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY_ID = "soilnet-test-key-id"
FAKE_SECRET = "soilnet-test-secret-value"

#: Credentials by shape: AWS key ids and secrets, private keys, tokens of common forges and clouds.
CREDENTIAL_PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AROA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}\b"),
    "private key": re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----\s*[A-Za-z0-9+/=\s]{64}"
    ),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Google service account key": re.compile(r'"private_key_id"\s*:\s*"[0-9a-f]{40}"'),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
}


def _repo_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    return [ROOT / line for line in listed.stdout.splitlines() if (ROOT / line).is_file()]


def credentials_in(text: str) -> list[str]:
    """Names of the credential shapes found in ``text``."""
    return [name for name, pattern in CREDENTIAL_PATTERNS.items() if pattern.search(text)]


def test_the_scanner_recognises_credentials():
    # the samples are assembled here so that this file itself holds none
    samples = [
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "-----BEGIN " + "RSA PRIVATE KEY-----\n" + "MIIEowIBAAKCAQEA" * 5,
        "ghp_" + "a" * 36,
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ]
    assert [credentials_in(s) for s in samples] == [["AWS access key id"], ["private key"], ["GitHub token"],
                                                    ["AWS secret key"]]  # fmt: skip
    assert credentials_in("AKIA is a prefix; key id soilnet-test-key-id; -----BEGIN PRIVATE KEY-----\nfake\n") == []


def test_no_credential_in_the_repository():
    files = _repo_files()
    assert len(files) > 50
    found = []
    for path in files:
        if path.stat().st_size > 2_000_000:
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{path.relative_to(ROOT)}: {name}" for name in credentials_in(text)]
    assert found == []


def _stored_text(url: str) -> str:
    """Every small object of a workspace (zarr.json attributes, GeoJSON, Parquet footers) as text."""
    loc = storage.resolve(url)
    parts = []
    for path, info in loc.fs.find(loc.path, detail=True).items():
        if path.endswith(("zarr.json", ".geojson", ".json", ".parquet", ".csv")) and info["size"] < 5_000_000:
            parts.append(loc.fs.cat_file(path).decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.mark.slow
def test_a_run_with_known_credentials_leaks_them_nowhere(s3_bucket, monkeypatch):
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    def capture_everything(level: str = "INFO") -> None:
        root = logging.getLogger()
        root.handlers = [Capture()]
        root.setLevel(logging.DEBUG)
        for name in ("botocore", "aiobotocore", "s3fs", "urllib3", "fsspec"):
            logging.getLogger(name).setLevel(logging.DEBUG)

    monkeypatch.setattr(importlib.import_module("soilnet.cli.common"), "setup_logging", capture_everything)
    workspace = f"{s3_bucket}/ws"
    result = CliRunner().invoke(
        app, ["demo-data", "--out", workspace, "--size-km", "3", "--n-points", "20", "--set", "log_level=DEBUG"]
    )
    logging.getLogger().handlers = []
    assert result.exit_code == 0, result.output
    logs = "\n".join(records)
    assert "botocore" in logs or "s3fs" in logs or len(records) > 20  # the capture really saw the S3 traffic
    stored = _stored_text(workspace)
    assert "raster_cube" in stored and json.dumps("soilnet_kind")[1:-1] in stored
    for where, text in (("logs", logs), ("CLI output", result.output), ("stored outputs", stored)):
        assert FAKE_SECRET not in text, f"the secret access key appears in the {where}"
    assert FAKE_KEY_ID not in stored, "the access key id is written into the outputs"
    assert credentials_in(logs + stored) == []


def _object_text(url: str) -> str:
    """Every object under a URL (map cube chunks and metadata, markers, COGs, STAC, preview) as text."""
    loc = storage.resolve(url)
    loc.fs.invalidate_cache()
    return "\n".join(loc.fs.cat_file(path).decode("utf-8", "replace") for path in loc.fs.find(loc.path))


def _run_text(client, run_id: str, where: Path) -> dict[str, str]:
    """An MLflow run's parameters, tags, metric names and every artifact, as text by kind."""
    run = client.get_run(run_id)
    folder = client.download_artifacts(run_id, "", str(where))
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return {
        "params": json.dumps(run.data.params),
        "tags": json.dumps(run.data.tags),
        "metric names": json.dumps(sorted(run.data.metrics)),
        "artifacts": "\n".join(p.read_bytes().decode("utf-8", "replace") for p in files),
    }


@pytest.mark.slow
def test_a_tracked_map_run_writes_the_credentials_nowhere(s3_bucket, tiny_demo, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from soilnet.config import SoilnetConfig, dump_config
    from soilnet.mapping.config import MapConfig, ModelSourceConfig
    from soilnet.mapping.job import run_map
    from soilnet.mapping.outputs import export_outputs
    from soilnet.tracking.config import TrackingConfig
    from soilnet.tracking.runs import RunTracker
    from tests.fixtures.tiny_models import save_tiny_bundle

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}", experiment="secrets")
    tracker = RunTracker.start(tracking, str(tmp_path), "map-secrets", tags={"soilnet.job": "map"})
    out = f"{s3_bucket}/maps/secrets"
    cfg = MapConfig(
        raster=tiny_demo.raster,
        climate=tiny_demo.climate,
        region=tiny_demo.region,
        out=out,
        model=ModelSourceConfig(bundle=save_tiny_bundle(f"{s3_bucket}/bundle")),
        climate_end="2018-06",
        resolution_m=240,
        tile_px=16,
        chunk_px=16,
        executor="local",
        mlflow_run_id=tracker.run_id,
        mlflow_tracking_uri=tracker.uri,
    )
    tracker.log_params({"map": cfg.model_dump(mode="json")})
    tracker.log_text(dump_config(SoilnetConfig.model_validate({"tracking": tracking.model_dump()})), "config.yaml")
    result = run_map(cfg)
    outputs = export_outputs(cfg)
    tracker.log_metrics({"map_tiles": result.tiles})
    tracker.finish()

    written = _run_text(MlflowClient(tracking_uri=tracker.uri), tracker.run_id, tmp_path / "artifacts")
    written["map outputs on S3"] = _object_text(out)
    assert "soilnet:layer" in written["map outputs on S3"] and '"input_hash"' in written["map outputs on S3"]
    assert "map/soc_g_kg.vrt" in {a.path for a in MlflowClient(tracking_uri=tracker.uri).list_artifacts(
        tracker.run_id, "map")} and len(outputs.items) == 3  # fmt: skip
    for where, text in written.items():
        assert FAKE_SECRET not in text, f"the secret access key appears in the {where}"
        assert FAKE_KEY_ID not in text, f"the access key id appears in the {where}"
        assert credentials_in(text) == [], where
