"""The demo region generator: determinism, seams, value ranges, memory, SOC depending on context, further targets."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from soilnet.data.bands import BAND_NAMES
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.demo_region import (
    DemoConfig,
    DemoGenerator,
    demo_grid,
    generate_demo_region,
    permafrost_field,
    taxonomy_field,
)
from soilnet.data.points import class_codes, class_vocabulary, read_points
from soilnet.data.raster_cube import RasterLayout, open_raster_cube

SMALL = DemoConfig(width_km=4, height_km=3, n_points=50, seed=5, cloud_cover=0.15)


def test_deterministic_and_independent_of_tiling(tmp_path: Path) -> None:
    a = generate_demo_region(SMALL, str(tmp_path / "a"), RasterLayout(inner_chunk=32, shard=64))
    b = generate_demo_region(SMALL, str(tmp_path / "b"), RasterLayout(inner_chunk=32, shard=128))
    c = generate_demo_region(
        SMALL.model_copy(update={"seed": 6}), str(tmp_path / "c"), RasterLayout(inner_chunk=32, shard=64)
    )
    ra, rb, rc = (open_raster_cube(p.raster).bands[:] for p in (a, b, c))
    np.testing.assert_array_equal(ra, rb)  # seams: a tile's pixels do not depend on the tiling
    assert not np.array_equal(ra, rc)
    pa, pb = read_points(a.points)[0], read_points(b.points)[0]
    assert pa.equals(pb) and len(pa) == 50
    np.testing.assert_array_equal(open_climate_cube(a.climate).data[:], open_climate_cube(b.climate).data[:])


def test_value_ranges_and_contents(tiny_demo) -> None:
    cube = open_raster_cube(tiny_demo.raster)
    assert cube.band_names == BAND_NAMES and cube.grid.epsg == 3035 and cube.grid.res == 30
    assert cube.attrs["noise_std_g_kg"] == 3.0 and cube.attrs["seed"] == 3
    values = cube.read_window(0, 0, cube.grid.height, cube.grid.width)
    sr, idx, elev, slope = values[:7], values[7:12], values[12], values[13]
    assert np.nanmin(sr) >= 0 and np.nanmax(sr) <= 1
    assert np.nanmin(idx) >= -1 and np.nanmax(idx) <= 1
    assert np.nanmin(elev) > 0 and np.nanmax(elev) < 2000 and np.nanmin(slope) >= 0
    assert np.isfinite(elev).all()  # SRTM is valid under clouds
    ndvi = values[BAND_NAMES.index("ndvi")]
    assert 0.4 < np.nanmean(ndvi) < 0.9
    lc = cube.group["landcover"][:]
    assert set(np.unique(lc)) <= {10, 30, 40, 50, 60, 80} and len(np.unique(lc)) >= 3
    climate = open_climate_cube(tiny_demo.climate)
    assert len(climate.variables) == 14 and len(climate.times) >= 61 and climate.grid.epsg == 4326
    data = climate.data[:]
    assert np.isfinite(data).all()
    tmmx = data[climate.variables.index("tmmx")]
    assert tmmx.min() > -20 and tmmx.max() < 45 and tmmx.std() > 3  # seasonal cycle
    points, epsg = read_points(tiny_demo.points, ["soc_g_kg"])
    assert epsg == 3035 and len(points) == 200
    assert points["soc_g_kg"].between(0.1, 400).all()
    resid = points["soc_g_kg"] - points["soc_true_g_kg"]
    assert 1.5 < resid.std() < 4.5  # recorded noise std is 3 g/kg
    truth = open_raster_cube(tiny_demo.truth)
    row, col = truth.grid.rowcol(points["x"].to_numpy(), points["y"].to_numpy())
    true_at = truth.read_window(0, 0, truth.grid.height, truth.grid.width)[0][row, col]
    np.testing.assert_allclose(true_at, points["soc_true_g_kg"], rtol=1e-3, atol=0.01)


def held_out_r2(features: np.ndarray, y: np.ndarray) -> float:
    """R2 on the second half of a quadratic least-squares fit on the first half."""
    design = np.hstack([np.ones((len(y), 1)), features, features**2])
    half = len(y) // 2
    coef, *_ = np.linalg.lstsq(design[:half], y[:half], rcond=None)
    resid = y[half:] - design[half:] @ coef
    return 1 - resid.var() / y[half:].var()


def test_soc_depends_on_context(tiny_demo) -> None:
    """A centre-pixel model leaves clearly more variance unexplained than one seeing ~1 km around."""
    cube, truth = open_raster_cube(tiny_demo.raster), open_raster_cube(tiny_demo.truth)
    values = cube.read_window(0, 0, cube.grid.height, cube.grid.width)
    soc = truth.read_window(0, 0, cube.grid.height, cube.grid.width)[0]
    filled = np.nan_to_num(values, nan=0.0)
    context = np.stack([uniform_filter(b, 33, mode="nearest") for b in filled[[4, 11, 12]]])
    ok = np.isfinite(soc) & np.isfinite(values).all(axis=0)
    rng = np.random.default_rng(0)
    pick = rng.choice(np.flatnonzero(ok.ravel()), 3000, replace=False)
    centre = values.reshape(14, -1)[:, pick].T
    with_context = np.hstack([centre, context.reshape(3, -1)[:, pick].T])
    y = np.log(soc.ravel()[pick])
    r2_centre, r2_context = held_out_r2(centre, y), held_out_r2(with_context, y)
    assert r2_context > r2_centre + 0.15, (r2_centre, r2_context)
    assert (1 - r2_centre) > 1.5 * (1 - r2_context)


def test_region_too_small_is_named() -> None:
    with pytest.raises(ValueError, match="too small for one 64 px patch"):
        demo_grid(DemoConfig(width_km=1, height_km=1))


def test_continental_extent_is_generated_tile_by_tile() -> None:
    """A 4000 x 3000 km region: constructing it and generating a far tile needs no memory growth."""
    tracemalloc.start()
    gen = DemoGenerator(DemoConfig(width_km=4000, height_km=3000, n_points=1000))
    tile = gen.tile(60_000, 90_000, 256, 256)
    clim = gen.climate_grid()
    block = gen.climate_block(clim, 100, 100, 16, 16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert gen.grid.width == 133_333 and tile.bands.shape == (14, 256, 256) and block.shape[2:] == (16, 16)
    assert peak < 300 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_further_targets_and_subsoil_have_known_truth(tmp_path: Path) -> None:
    """pH, permafrost, taxonomy order and a 20-50 cm row per point, each labelled from its true map."""
    cfg = SMALL.model_copy(update={"n_points": 120, "subsoil_cm": (20.0, 50.0)})
    paths = generate_demo_region(cfg, str(tmp_path / "d"), RasterLayout(inner_chunk=32, shard=64))
    points, _ = read_points(paths.points, ["soc_g_kg", "ph_h2o", "permafrost"], allow_missing=True)
    assert class_vocabulary(points) == {
        "permafrost": ["no", "yes"],
        "taxonomy_order": ["Gelisols", "Histosols", "Inceptisols", "Spodosols"],
    }
    top, deep = points[points["depth_top_cm"] == 0], points[points["depth_top_cm"] == 20]
    assert len(top) == len(deep) == 120 and (deep["depth_bottom_cm"] == 50).all()
    assert deep["id"].tolist() == [f"{i}-sub" for i in top["id"]]
    assert deep["permafrost"].isna().all() and top["permafrost"].notna().all()
    truth = open_raster_cube(paths.truth)
    assert truth.band_names == (
        "soc_g_kg", "ph_h2o", "permafrost", "taxonomy_order", "soc_g_kg_20_50cm", "ph_h2o_20_50cm"
    )  # fmt: skip
    row, col = truth.grid.rowcol(top["x"].to_numpy(), top["y"].to_numpy())
    maps = truth.read_window(0, 0, truth.grid.height, truth.grid.width)[:, row, col]
    true = dict(zip(truth.band_names, maps, strict=True))
    assert 0.1 < (top["ph_h2o"] - true["ph_h2o"]).std() < 0.35  # recorded noise std 0.2
    np.testing.assert_allclose(deep["soc_true_g_kg"], true["soc_g_kg_20_50cm"], rtol=1e-3, atol=0.01)
    assert (true["soc_g_kg_20_50cm"] < true["soc_g_kg"]).all() and (true["ph_h2o_20_50cm"] > true["ph_h2o"]).all()
    codes = class_codes(top["taxonomy_order"], class_vocabulary(points)["taxonomy_order"])
    agree = (codes == true["taxonomy_order"]).mean()
    assert 0.85 <= agree < 1.0  # 5 % of labels flipped
    gelisols = true["taxonomy_order"] == 0
    np.testing.assert_array_equal(gelisols, true["permafrost"] == 1)  # Gelisols are the permafrost soils


def test_frost_and_taxonomy_rules_hand_worked() -> None:
    elev, temp, wet = np.array([600.0, 300.0]), np.array([8.0, 9.5]), np.array([0.6, 0.4])
    # 0.006 * 250 + 0.8 + 0.08 = 2.38 > 0.55; 0.006 * -50 - 0.4 - 0.08 = -0.78
    np.testing.assert_array_equal(permafrost_field(elev, temp, wet, np.zeros(2)), [1, 0])
    order = taxonomy_field(np.array([1, 0, 0, 0]), np.array([50.0, 50.0, 20.0, 20.0]), np.array([5, 7, 5, 7]))
    np.testing.assert_array_equal(order, [0, 1, 3, 2])  # Gelisols, Histosols, Spodosols, Inceptisols
