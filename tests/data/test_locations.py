"""Labelled locations carry folds; unlabelled ones are seeded, buffered and mostly unmasked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.bands import EXCLUDED_LANDCOVER
from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.folds import FoldConfig
from soilnet.data.locations import labelled_locations, masked_fraction, shard_quotas, unlabelled_locations
from soilnet.data.raster_cube import RasterLayout, open_raster_cube
from soilnet.data.stream_config import StreamConfig


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("region"))
    cfg = DemoConfig(width_km=6, height_km=6, n_points=30, cloud_cover=0.1)
    return generate_demo_region(cfg, root, layout=RasterLayout(inner_chunk=32, shard=64))


def test_labelled_locations_have_folds_and_targets(region):
    points = pd.read_parquet(region.points)
    table = labelled_locations(points, "soc_g_kg", FoldConfig(k=3))
    assert list(table.columns) == ["id", "x", "y", "date", "target", "fold", "weight"]
    assert (table["weight"] == 1.0).all()  # lab values (no spectral label in this table)
    assert set(table["fold"]) == {0, 1, 2}
    np.testing.assert_allclose(table["target"], points["soc_g_kg"].astype(np.float32))


def test_labelled_locations_reject_bad_target(region):
    points = pd.read_parquet(region.points)
    with pytest.raises(ValueError, match="no target column 'clay_pct'"):
        labelled_locations(points, "clay_pct", FoldConfig(k=3))
    points.loc[3, "soc_g_kg"] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite at row 3"):
        labelled_locations(points, "soc_g_kg", FoldConfig(k=3))


def test_shard_quotas_follow_area():
    class Cube:  # only the grid and layout are used
        from soilnet.data.grid import Grid

        grid = Grid.from_origin(3035, 0, 0, 30, 100, 70)
        layout = RasterLayout(inner_chunk=16, shard=64)

    quotas = shard_quotas(Cube(), 1000)  # type: ignore[arg-type]
    assert sum(q for *_, q in quotas) == 1000
    assert quotas[0][-1] > quotas[-1][-1]  # a full shard gets more than the corner remnant


def test_masked_fraction_matches_direct_count():
    rng = np.random.default_rng(0)
    mask = rng.random((40, 50)) < 0.3
    rows, cols = np.array([0, 5, 24]), np.array([0, 30, 34])
    expected = [mask[r : r + 16, c : c + 16].mean() for r, c in zip(rows, cols, strict=True)]
    np.testing.assert_allclose(masked_fraction(mask, rows, cols, 16), expected)


def test_unlabelled_locations_are_deterministic_buffered_and_unmasked(region):
    cube = open_raster_cube(region.raster)
    points = pd.read_parquet(region.points)
    exclude = points[["x", "y"]].to_numpy()[:5]
    cfg = StreamConfig(n_unlabelled=60, buffer_px=20, patch_px=32, max_masked_fraction=0.2, seed=3)
    table = unlabelled_locations(cube, cfg, exclude)
    again = unlabelled_locations(cube, cfg, exclude)
    pd.testing.assert_frame_equal(table, again)
    other = unlabelled_locations(cube, cfg.model_copy(update={"seed": 4}), exclude)
    assert set(other["id"]) != set(table["id"])
    assert 30 <= len(table) <= 60 and table["id"].is_unique
    assert (table["fold"] == -1).all() and table["target"].isna().all()
    assert (table["date"] == np.datetime64("2018-12-01")).all()
    dist = np.hypot(table["x"].to_numpy()[:, None] - exclude[:, 0], table["y"].to_numpy()[:, None] - exclude[:, 1])
    assert dist.min() >= 20 * cube.grid.res
    for x, y in table[["x", "y"]].to_numpy():
        r0, c0 = cube.window_at(x, y, 32)
        bands = cube.read_raw(r0, c0, 32, 32)
        lc = cube.read_raw(r0, c0, 32, 32, variable="landcover")
        masked = (bands == cube.nodata).any(axis=0) | np.isin(lc, (*EXCLUDED_LANDCOVER, 0))
        assert masked.mean() <= 0.2


def test_huge_buffer_leaves_no_locations(region):
    cube = open_raster_cube(region.raster)
    points = pd.read_parquet(region.points)
    cfg = StreamConfig(n_unlabelled=20, buffer_px=10_000)
    table = unlabelled_locations(cube, cfg, points[["x", "y"]].to_numpy())
    assert len(table) == 0 and list(table.columns) == ["id", "x", "y", "date", "target", "fold"]
