"""The acquire config section validates its fields with messages naming them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from soilnet.data.earth_engine.config import AcquireConfig

BASE = {
    "region": "region.geojson",
    "year": 2018,
    "sampling_end_date": "2018-06-15",
    "bucket": "soil-bucket",
    "manifest_url": "acquire/manifest.json",
}


def test_defaults() -> None:
    cfg = AcquireConfig.model_validate(BASE)
    assert cfg.products == ["landsat", "climate", "landcover"]
    assert (cfg.epsg, cfg.resolution_m, cfg.climate_epsg, cfg.climate_months) == (3035, 30.0, 4326, 61)
    assert AcquireConfig.model_validate({**BASE, "crs": "epsg:5070"}).crs == "EPSG:5070"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crs": "EPSG:4326"}, "crs: 'EPSG:4326' is not a projected CRS in metres"),
        ({"crs": "EPSG:999999"}, "crs: 'EPSG:999999' is not a known CRS"),
        ({"tile_size_px": 1000}, "tile_size_px"),
        ({"bucket": None}, "bucket is required when destination is cloud_storage"),
        ({"destination": "drive"}, "drive_folder is required"),
        ({"backoff_initial_s": 100, "backoff_max_s": 10}, "backoff_max_s"),
        ({"max_pixels": 1_000_000}, "max_pixels .* below one tile"),
        ({"products": ["landsat", "landsat"]}, "products must not repeat"),
        ({"products": ["sentinel"]}, "products"),
        ({"year": 2010}, "year"),
        ({"credentials_env": "not an env"}, "credentials_env"),
        ({"bukket": "x"}, "bukket"),
    ],
)
def test_bad_values_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AcquireConfig.model_validate({**BASE, **change})
