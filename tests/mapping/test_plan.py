"""Planning: tile count, area, input bytes and FLOPs (dense cheaper than windows at a stride)."""

from __future__ import annotations

import datetime as dt
import itertools
import tracemalloc

import numpy as np
import pytest

from soilnet.data.earth_engine.acquire import plan_products
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.region import load_region
from soilnet.mapping.config import MapConfig
from soilnet.mapping.job import changed_tiles, prepare_map
from soilnet.mapping.model_source import load_ensemble
from soilnet.mapping.plan import flops_per_pixel
from tests.fixtures.continents import EUROPE, Continent, empty_continent


def test_plan_counts_tiles_area_and_bytes(map_config) -> None:
    plan = prepare_map(map_config(), create=False).plan
    assert len(plan.tiles) == 16
    assert plan.area_km2 == pytest.approx(36.0)  # the region is the 6 x 6 km cube
    # tiles of 64 input px read (7 * 8 + 32) = 88 px a side (clipped at the cube edge) of 14 int16 bands
    cube_bytes = 200 * 200 * 14 * 2
    assert 1.5 * cube_bytes < plan.input_bytes < (88 / 64) ** 2 * cube_bytes
    facts = plan.facts(8)
    assert facts["tiles"] == "16 of 8 px" and "GPU time on 8 GPU(s)" in facts
    assert plan.hours_on(8) == pytest.approx(plan.hours_on(1) / 8)


def test_dense_mode_needs_fewer_flops(tiny_model) -> None:
    model = load_ensemble(tiny_model, device="cpu")
    windows, dense = flops_per_pixel(model, 8, "windows"), flops_per_pixel(model, 8, "dense")
    assert 0 < dense < windows


def test_checkpoint_source_equals_bundle(tiny_checkpoint, tiny_model) -> None:
    a, b = load_ensemble(tiny_checkpoint, device="cpu"), load_ensemble(tiny_model, device="cpu")
    assert a.patch == b.patch == 32 and a.months == b.months == 12 and a.bands == b.bands
    image = np.random.default_rng(0).normal(size=(len(a.bands), 40, 40)).astype(np.float32)
    series = np.zeros((1, a.months, len(a.variables)), dtype=np.float32)
    index = np.zeros((2, 2), dtype=np.int64)
    (mean_a, std_a, _), (mean_b, std_b, _) = (m.predict_tile(image, series, index, 8, "dense", 4) for m in (a, b))
    np.testing.assert_array_equal(mean_a, mean_b)
    np.testing.assert_array_equal(std_a, std_b)


def test_unknown_bundle_is_a_clear_error(tmp_path) -> None:
    from soilnet.mapping.config import ModelSourceConfig

    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        load_ensemble(ModelSourceConfig(bundle=str(tmp_path)), device="cpu")


@pytest.fixture(scope="module")
def europe(tmp_path_factory: pytest.TempPathFactory) -> Continent:
    """Europe's grid (about 164,000 x 150,000 px at 30 m, EPSG:3035) as pixel-less cubes."""
    return empty_continent(tmp_path_factory.mktemp("europe"), "europe", EUROPE, 3035)


def shoelace_km2(shapes: list[dict]) -> float:
    """Area of projected polygons (equal-area CRS) in km2, holes subtracted."""
    total = 0.0
    for polygon in shapes:
        for i, ring in enumerate(polygon["coordinates"]):
            x, y = np.asarray(ring).T
            area = abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))) / 2
            total += area if i == 0 else -area
    return total / 1e6


@pytest.mark.parametrize(("resolution_m", "tile_px"), [(240, 256), (30, 2048)])
def test_map_plan_at_europe_size_from_metadata_only(europe, tiny_model, tmp_path, resolution_m, tile_px) -> None:
    cfg = MapConfig(
        raster=europe.raster,
        climate=europe.climate,
        region=europe.region,
        out=str(tmp_path / "map"),
        model=tiny_model,
        climate_end="2018-06",
        resolution_m=resolution_m,
        tile_px=tile_px,
    )
    tracemalloc.start()
    prepared = prepare_map(cfg, create=False)
    plan = prepared.plan
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = plan.grid.output
    assert (out.width, out.height) == (-(-164051 // plan.grid.stride), -(-150153 // plan.grid.stride))
    expected = shoelace_km2(load_region(europe.region).projected(3035))
    assert plan.area_km2 == pytest.approx(expected, rel=0.01)
    tile_km2 = (tile_px * resolution_m / 1e3) ** 2
    assert expected / tile_km2 < len(plan.tiles) < -(-out.width // tile_px) * -(-out.height // tile_px)
    assert plan.input_bytes > expected * 1e6 / 900 * 14 * 2  # every 30 m pixel of the region, 14 int16 bands
    assert peak < 256 * 2**20, f"planning Europe traced {peak / 2**20:.0f} MiB"
    # what a nightly run would compute, decided from metadata (no marker, no pixel): every tile, as new
    changes = list(itertools.islice(changed_tiles(cfg), 50))
    assert len(changes) == 50 and {c.reason for c in changes} == {"new"}


def test_acquire_plan_at_europe_size(europe) -> None:
    cfg = AcquireConfig(
        region=europe.region,
        year=2018,
        sampling_end_date=dt.date(2018, 6, 15),
        bucket="exports",
        manifest_url="unused.json",
    )
    plans = {p.product: p for p in plan_products(cfg, load_region(europe.region))}
    landsat = plans["landsat"]
    assert (landsat.grid.width, landsat.grid.height) == (164051, 150153)
    grid_tiles = -(-164051 // 2048) * -(-150153 // 2048)
    expected = shoelace_km2(load_region(europe.region).projected(3035))
    assert expected / (2048 * 0.03) ** 2 < len(landsat.tiles) < grid_tiles
