"""The whole acquisition from one config, with real export requests and the fake task service."""

from __future__ import annotations

from pathlib import Path

import pytest

from soilnet.data.earth_engine.acquire import landed_tiles, plan_products, run_acquisition
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.earth_engine.manifest import Manifest
from soilnet.data.region import load_region


@pytest.fixture
def cfg(region_file: Path, tmp_path: Path) -> AcquireConfig:
    return AcquireConfig.model_validate(
        {
            "region": str(region_file),
            "year": 2018,
            "sampling_end_date": "2018-06-15",
            "bucket": "soil-bucket",
            "bucket_prefix": "eu",
            "manifest_url": str(tmp_path / "acquire" / "manifest.json"),
            "max_concurrent_tasks": 2,
        }
    )


def test_plan_needs_no_earth_engine(cfg: AcquireConfig) -> None:
    plans = {p.product: p for p in plan_products(cfg, load_region(cfg.region))}
    assert [(t.row, t.col) for t in plans["landsat"].tiles] == [(0, 0), (0, 1)]
    assert plans["landsat"].grid.crs == "EPSG:3035" and plans["landsat"].period == "2018"
    assert plans["landcover"].grid == plans["landsat"].grid and plans["landcover"].period == "v200"
    assert plans["climate"].grid.crs == "EPSG:4326" and plans["climate"].period == "2018-06"
    assert len(plans["climate"].tiles) == 1


def test_run_resume_and_landed(ee_api, cfg, clock, fake_service) -> None:
    service = fake_service(clock)
    started: list = []
    original = service.start
    service.start = lambda request: started.append(request) or original(request)
    summary = run_acquisition(cfg, service=service, sleep=clock.sleep, clock=clock)
    assert summary.total == 5 and summary.completed == 5 and service.max_active == 2
    keys = [r.key for r in started]
    assert keys == [
        "landsat/2018/r0000_c0000",
        "landsat/2018/r0000_c0001",
        "climate/2018-06/r0000_c0000",
        "landcover/v200/r0000_c0000",
        "landcover/v200/r0000_c0001",
    ]
    landsat_task = started[1].task.config
    assert (
        landsat_task["fileExportOptions"]["cloudStorageDestination"]["filenamePrefix"] == "eu/landsat/2018/r0000_c0001"
    )
    assert landsat_task["fileExportOptions"]["geoTiffOptions"]["noData"] == {"floatValue": -32768.0}
    landcover_task = started[3].task.config
    assert landcover_task["fileExportOptions"]["geoTiffOptions"]["noData"] == {"floatValue": 255.0}

    urls = [r.url for r in landed_tiles(cfg.manifest_url, "landsat")]
    assert urls == [
        "gs://soil-bucket/eu/landsat/2018/r0000_c0000.tif",
        "gs://soil-bucket/eu/landsat/2018/r0000_c0001.tif",
    ]
    assert len(landed_tiles(cfg.manifest_url)) == 5

    again = fake_service(clock)
    summary = run_acquisition(cfg, service=again, sleep=clock.sleep, clock=clock)
    assert again.started == [] and summary.skipped == 5
    assert Manifest.load(cfg.manifest_url).counts()["completed"] == 5


def test_without_credentials_run_fails_before_any_export(cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    from soilnet.data.earth_engine.credentials import CredentialsError

    monkeypatch.delenv("SOILNET_EE_SERVICE_ACCOUNT_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(CredentialsError, match="no Earth Engine credentials"):
        run_acquisition(cfg)
    assert not Path(cfg.manifest_url).exists()


def test_slope_is_taken_on_the_raster_grid_of_the_config(ee_api, cfg, graph, constant) -> None:
    from soilnet.data.earth_engine.acquire import product_image

    for crs, res in (("EPSG:3035", 30.0), ("EPSG:5070", 60.0)):
        us = cfg.model_copy(update={"crs": crs, "resolution_m": res})
        plan = next(p for p in plan_products(us, load_region(us.region)) if p.product == "landsat")
        image, _ = product_image(us, plan, load_region(us.region))
        (default,) = graph(image).calls("Image.setDefaultProjection")
        assert constant(default["crs"]["functionInvocationValue"]["arguments"]["crs"]) == crs
        assert constant(default["scale"]) == res
