"""``soilnet acquire`` commands: plan, status, landed, and clear errors (no Earth Engine access)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soilnet.cli.acquire import app
from soilnet.data.earth_engine.manifest import Manifest

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    ring = [[10.0, 50.0], [10.5, 50.0], [10.5, 50.3], [10.0, 50.3], [10.0, 50.0]]
    region = tmp_path / "region.geojson"
    region.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    acquire = {
        "region": str(region),
        "year": 2018,
        "sampling_end_date": "2018-06-15",
        "bucket": "soil-bucket",
        "manifest_url": str(tmp_path / "manifest.json"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"acquire": acquire}))
    return path


def test_plan_lists_tiles_per_product(config_file: Path) -> None:
    result = runner.invoke(app, ["plan", "-c", str(config_file), "--set", "tile_size_px=1024"])
    assert result.exit_code == 0, result.output
    assert "landsat" in result.output and "EPSG:3035" in result.output and "1024" in result.output


def test_status_and_landed_read_the_manifest(config_file: Path, tmp_path: Path) -> None:
    manifest = Manifest(str(tmp_path / "manifest.json"))
    manifest.record("landsat/2018/r0000_c0000", "landsat", 0, 0, "gs://soil-bucket/a.tif").state = "completed"
    failed = manifest.record("landsat/2018/r0000_c0001", "landsat", 0, 1, "gs://soil-bucket/b.tif")
    failed.state, failed.error = "failed", "Computation timed out."
    manifest.save()
    landed = runner.invoke(app, ["landed", "-c", str(config_file), "--product", "landsat"])
    assert landed.exit_code == 0 and landed.stdout.split() == ["gs://soil-bucket/a.tif"]
    status = runner.invoke(app, ["status", "-c", str(config_file)])
    assert status.exit_code == 0 and "Computation timed out." in status.output


def test_bad_config_is_one_clear_error(config_file: Path) -> None:
    result = runner.invoke(app, ["plan", "-c", str(config_file), "--set", "crs=EPSG:4326"])
    assert result.exit_code == 2
    assert "crs" in result.output and "not a projected CRS" in result.output


def test_run_without_credentials_is_a_clear_error(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    result = runner.invoke(app, ["run", "-c", str(config_file)])
    assert result.exit_code == 2 and "no Earth Engine credentials" in result.output
