"""Tile grid: stride, halo windows, output blocks, region clipping (also across the cube edge)."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from soilnet.data.grid import Grid
from soilnet.data.region import region_from_geojson
from soilnet.mapping.tiling import MapGrid, stride_for

INPUT = Grid.from_origin(3035, 4_200_000.0, 3_000_000.0, 30.0, 200, 200)


def test_stride_must_be_a_whole_multiple() -> None:
    assert stride_for(30.0, 240.0) == 8
    assert stride_for(25.0, 250.0) == 10
    with pytest.raises(ValueError, match=r"resolution_m 250 .* 30 m pixels \(use 240 or 270\)"):
        stride_for(30.0, 250.0)


def test_output_grid_and_halo_windows() -> None:
    grid = MapGrid.build(INPUT, 240.0, patch=32, tile_px=8)
    out = grid.output
    assert (out.width, out.height, out.res) == (25, 25, 240.0)
    assert out.transform[2] == INPUT.transform[2] and out.transform[5] == INPUT.transform[5]
    tiles = grid.tiles(None)
    assert [t.name for t in tiles[:2]] == ["r0000_c0000", "r0000_c0001"]
    assert len(tiles) == 16 and tiles[-1].height == 1  # 25 = 3 * 8 + 1
    # window of output pixel 0 is centred on the output pixel: starts 4 - 16 = -12 input px
    assert grid.input_window(tiles[1]) == (-12, 64 - 12, 7 * 8 + 32, 7 * 8 + 32)
    rows, _ = grid.block_index(2, 2)
    assert rows.tolist() == [list(range(12, 20)), list(range(20, 28))]  # each block is its 8 x 8 pixels


def test_block_is_the_window_when_stride_exceeds_patch() -> None:
    grid = MapGrid.build(INPUT, 33 * 30.0, patch=32, tile_px=4)
    rows, _ = grid.block_index(2, 1)
    assert rows.shape == (2, 32) and rows[1, 0] == 33


def _square(west: float, south: float, east: float, north: float) -> dict:
    tr = Transformer.from_crs(3035, 4326, always_xy=True)
    xs, ys = [west, east, east, west, west], [south, south, north, north, south]
    lon, lat = tr.transform(xs, ys)
    return {"type": "Polygon", "coordinates": [[[a, b] for a, b in zip(lon, lat, strict=True)]]}


def test_region_crossing_the_cube_edge_is_clipped_to_the_grid() -> None:
    grid = MapGrid.build(INPUT, 240.0, patch=32, tile_px=8)
    west, south, east, north = INPUT.bounds
    # a square from the middle of the cube to 3 km beyond its east and south edges
    region = region_from_geojson(_square(west + 3000, south - 3000, east + 3000, north - 3000), "test")
    tiles = grid.tiles(region)
    assert tiles and all(t.row0 + t.height <= 25 and t.col0 + t.width <= 25 for t in tiles)
    assert {t.name for t in tiles} >= {"r0003_c0003"} and "r0000_c0000" not in {t.name for t in tiles}
    shapes = region.projected(3035)
    masks = {t.name: grid.region_mask(t, shapes) for t in tiles}
    assert masks["r0003_c0003"].all()  # the corner tile lies inside the region
    partial = masks["r0001_c0001"]  # region starts 3 km (12.5 px) east and south of the NW corner
    assert partial[:, :4].sum() == 0 and partial[-1, -1]
    assert grid.region_mask(tiles[0], None).all()
    assert np.count_nonzero(masks["r0001_c0001"]) < 64
