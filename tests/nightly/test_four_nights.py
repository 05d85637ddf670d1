"""Four nights of `soilnet nightly -c FILE` as an operator runs them: loopback S3, a real MLflow server.

Night 1 publishes the first release; night 2 finds nothing new and publishes nothing; one new climate
month arrives and night 3 recomputes the tiles, passes the gate and moves `latest`; a broken model is
put in place and night 4 is refused (exit 1, one line, the webhook called) with `latest` still on night 3.
Then `soilnet nightly rollback` points back at night 1.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from soilnet import storage
from soilnet.cli.app import app
from soilnet.data.climate_cube import create_climate_cube, finish_climate_cube, open_climate_cube, write_climate_block
from soilnet.nightly.releases import ReleaseStore
from soilnet.recipes.bundle import save_bundle
from tests.fixtures.tiny_models import save_tiny_bundle, tiny_bundle
from tests.tracking.conftest import mlflow_server  # noqa: F401 (the real MLflow server fixture)

pytestmark = pytest.mark.slow


def write_climate(url: str, source: str, extra_months: int) -> None:
    """The demo climate cube copied to ``url``, with ``extra_months`` more months (each a copy of the month a
    year before: a plausible new month)."""
    src = open_climate_cube(source)
    values = np.asarray(src.data[:])
    for _ in range(extra_months):
        values = np.concatenate([values, values[:, -12:-11]], axis=1)
    times = (src.times[0].astype("datetime64[M]") + np.arange(values.shape[1])).astype("datetime64[D]")
    cube = create_climate_cube(url, src.grid, src.variables, times, overwrite=True)
    write_climate_block(cube, 0, 0, values)
    finish_climate_cube(cube)


def save_broken_bundle(url: str) -> None:
    """The tiny ensemble with its target scaling off by 100x: every prediction far from the last map."""
    bundle = tiny_bundle()
    stats = bundle.stats.model_copy(update={"target_std": bundle.stats.target_std * 100})
    storage.remove(url)
    save_bundle(url, bundle.recipe, bundle.models, stats, bundle.meta)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP endpoint that records the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def night(config: Path) -> tuple[int, str]:
    """Run ``soilnet nightly -c config``; (exit code, its output)."""
    result = CliRunner().invoke(app, ["nightly", "-c", str(config)])
    return result.exit_code, result.output


def test_four_nights(tiny_demo, s3_bucket, mlflow_server, webhook, tmp_path, monkeypatch) -> None:  # noqa: F811
    from mlflow import MlflowClient

    hook_url, received = webhook
    monkeypatch.setenv("SOILNET_NIGHTLY_WEBHOOK_URL", hook_url)
    climate = f"{s3_bucket}/cubes/climate.zarr"
    write_climate(climate, tiny_demo.climate, 0)
    bundle = save_tiny_bundle(f"{s3_bucket}/models/champion")
    releases = f"{s3_bucket}/maps/releases"
    config = tmp_path / "nightly.yaml"
    map_cfg = {
        "raster": tiny_demo.raster,
        "climate": climate,
        "region": tiny_demo.region,
        "out": f"{s3_bucket}/maps/work",
        "write_roots": [f"{s3_bucket}/maps"],
        "model": {"bundle": bundle},
        "climate_end": "latest",
        "resolution_m": 240,
        "tile_px": 16,
        "chunk_px": 16,
        "executor": "local",
        "cog_blocksize": 16,
    }
    gate = {"change_threshold": 2.0, "max_changed_pct": 20.0, "max_missing_jump_pct": 1.0}
    nightly = {"map": map_cfg, "releases": releases, "keep": 3, "gate": gate, "tracking_uri": mlflow_server}
    config.write_text(yaml.safe_dump({"nightly": nightly}))
    store = ReleaseStore(releases)
    client = MlflowClient(tracking_uri=mlflow_server)

    # night 1: the first release
    code, out = night(config)
    assert code == 0, out
    assert "published" in out and "2018-12" in out
    first = store.latest()
    assert first is not None and first["climate_end"] == "2018-12"
    record1 = store.record(first["version"])
    assert len(record1["recomputed"]) == len(record1["tiles"]) > 1
    layer = storage.join(first["url"], "cog", "soc_g_kg.vrt")
    with storage.rasterio_env(layer), rasterio.open(storage.gdal_path(layer)) as src:
        assert np.isfinite(src.read(1, masked=True).compressed()).all()

    # night 2: nothing new, nothing published, and it says so
    code, out = night(config)
    assert code == 0, out
    assert "nothing new since" in out and "nothing published" in out
    assert store.latest()["version"] == first["version"] and store.versions() == [first["version"]]

    # one new climate month arrives; night 3 recomputes the tiles, passes the gate, moves the pointer
    write_climate(climate, tiny_demo.climate, 1)
    code, out = night(config)
    assert code == 0, out
    third = store.latest()
    assert third["version"] > first["version"] and third["climate_end"] == "2019-01"
    record3 = store.record(third["version"])
    assert set(record3["recomputed"]) == set(record1["tiles"])
    assert record3["changed_pct"] <= gate["max_changed_pct"]
    assert store.versions() == [first["version"], third["version"]]

    # a broken model under the same source: night 4 is refused, latest stays on night 3
    save_broken_bundle(bundle)
    code, out = night(config)
    assert code == 1
    (line,) = [ln for ln in out.splitlines() if ln.startswith("error:")]  # the reason, in one line
    assert line.startswith("error: night refused:") and "with the same model" in line
    assert store.latest()["version"] == third["version"]
    assert store.versions() == [first["version"], third["version"]]
    assert received and received[-1]["status"] == "failed" and "night refused" in received[-1]["reason"]

    # each night is an MLflow run: inputs, tiles recomputed, the gate's figures, the published version
    (experiment,) = [e for e in client.search_experiments() if e.name == "soilnet-nightly"]
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.data.tags["soilnet.nightly.status"] for r in runs] == ["published", "nothing-new", "published", "refused"]
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
    assert runs[2].data.tags["soilnet.nightly.version"] == third["version"]
    assert runs[2].data.metrics["tiles_recomputed"] == len(record3["recomputed"])
    assert runs[3].data.metrics["changed_pct"] > gate["max_changed_pct"]
    assert runs[0].data.params["climate"] == climate

    # rollback moves the pointer back to night 1
    result = CliRunner().invoke(app, ["nightly", "rollback", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert store.latest()["version"] == first["version"]
    assert f"latest -> {first['version']}" in result.output
