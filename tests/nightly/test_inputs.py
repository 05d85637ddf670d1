"""New inputs for a night: only the periods newer upstream, exported through the acquisition's client code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from soilnet.data.earth_engine.acquire import run_acquisition
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.nightly.inputs import newer_periods, period_url
from tests.data.earth_engine.conftest import FakeClock, FakeService, ee_api  # noqa: F401 (fixture)


@pytest.fixture
def acquire(tmp_path: Path) -> AcquireConfig:
    region = tmp_path / "region.geojson"
    box = [[10.0, 50.0], [10.5, 50.0], [10.5, 50.4], [10.0, 50.4], [10.0, 50.0]]
    region.write_text(json.dumps({"type": "Polygon", "coordinates": [box]}))
    return AcquireConfig.model_validate(
        {
            "region": str(region),
            "year": 2018,
            "sampling_end_date": "2018-12-01",
            "bucket": "soil-bucket",
            "manifest_url": str(tmp_path / "manifest.json"),
        }
    )


def test_only_newer_periods_are_acquired(acquire: AcquireConfig) -> None:
    assert newer_periods(acquire, "2018-12", 2018, "2018-12", 2018) is None
    month = newer_periods(acquire, "2018-12", 2018, "2019-01", 2018)
    assert month is not None and month.products == ["climate"]
    assert month.sampling_end_date == dt.date(2019, 1, 1) and month.climate_months == acquire.climate_months
    year = newer_periods(acquire, "2018-12", 2018, "2018-12", 2019)
    assert year is not None and year.products == ["landsat", "landcover"] and year.year == 2019
    assert newer_periods(acquire, "2018-12", None, "2018-12", 2019) is None, "a raster cube of unknown year"


def test_new_month_exports_only_the_climate_tiles_of_that_month(ee_api, acquire: AcquireConfig) -> None:  # noqa: F811
    clock = FakeClock()
    first = FakeService(clock)
    run_acquisition(acquire.model_copy(update={"products": ["climate"]}), service=first, sleep=clock.sleep, clock=clock)
    assert [key for key, _ in first.started] == ["climate/2018-12/r0000_c0000"]
    plan = newer_periods(acquire, "2018-12", 2018, "2019-01", 2018)
    tonight = FakeService(clock)
    summary = run_acquisition(plan, service=tonight, sleep=clock.sleep, clock=clock)
    assert [key for key, _ in tonight.started] == ["climate/2019-01/r0000_c0000"]
    assert summary.total == summary.completed == 1, "no landsat or landcover tile is exported again"


def test_new_period_cubes_sit_beside_the_current_ones() -> None:
    assert period_url("s3://b/cubes/climate.zarr", "2019-01") == "s3://b/cubes/climate-2019-01.zarr"
    assert period_url("s3://b/cubes/climate-2019-01.zarr", "2019-02") == "s3://b/cubes/climate-2019-02.zarr"
    assert period_url("/data/raster-2018.zarr", "2019") == "/data/raster-2019.zarr"
