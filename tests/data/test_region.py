"""Region GeoJSON reading, the grid over it, and the tiles that touch it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath
from pyproj import Transformer

from soilnet.data.region import RegionError, load_region, region_from_geojson, region_grid, region_tiles


def test_grid_covers_region_snapped(region_file: Path) -> None:
    region = load_region(region_file)
    grid = region_grid(region, 3035, 30.0)
    outline = np.asarray(region.projected(3035)[0]["coordinates"][0])
    west, south, east, north = grid.bounds
    tol = 1e-3  # metres of projection round-trip noise
    assert west - tol <= outline[:, 0].min() < west + 30 and east - 30 < outline[:, 0].max() <= east + tol
    assert south - tol <= outline[:, 1].min() < south + 30 and north - 30 < outline[:, 1].max() <= north + tol
    assert west % 30 == 0 and north % 30 == 0 and grid.crs == "EPSG:3035" and grid.res == 30.0
    assert grid.width == 3000  # round-trip noise of the box corners adds no column


def test_climate_grid_on_terraclimate_lattice(region_file: Path) -> None:
    grid = region_grid(load_region(region_file), 4326, 1 / 24)
    west, _, _, north = grid.bounds
    assert np.isclose(west * 24, round(west * 24)) and np.isclose(north * 24, round(north * 24))
    assert grid.width > 20 and grid.height > 10


def test_tiles_outside_a_triangle_are_skipped(tmp_path: Path) -> None:
    # A triangle covering the lower-left half of a 4 x 4 tile grid (tiles of 64 px at 30 m, EPSG:3035).
    w, n, size = 4_000_000.0, 3_000_000.0, 4 * 64 * 30.0
    corners = np.array([[w, n - size], [w + size, n - size], [w, n], [w, n - size]])
    lon, lat = Transformer.from_crs(3035, 4326, always_xy=True).transform(corners[:, 0], corners[:, 1])
    path = tmp_path / "triangle.geojson"
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [np.column_stack([lon, lat]).tolist()]}))
    region = load_region(path)
    grid = region_grid(region, 3035, 30.0)
    tiles = region_tiles(grid, 64, region)
    picked = {(t.row, t.col) for t in tiles}
    # Independent check: sample each tile densely and test the samples against the projected triangle.
    triangle = PolygonPath(np.asarray(region.projected(3035)[0]["coordinates"][0]))
    for row0, col0, h, wd in grid.tiles(64):
        xs = grid.x_coords(col0, wd)[::4]
        ys = grid.y_coords(row0, h)[::4]
        samples = np.array([(x, y) for x in xs for y in ys])
        inside = triangle.contains_points(samples).any()
        if inside:
            assert (row0 // 64, col0 // 64) in picked
    assert (0, 3) not in picked and (3, 0) in picked
    assert {(0, 2), (0, 3), (1, 3)}.isdisjoint(picked)  # wholly above the hypotenuse
    assert all(t.name == f"r{t.row:04d}_c{t.col:04d}" for t in tiles)


def test_feature_collection_and_multipolygon() -> None:
    ring = [[10, 50], [11, 50], [11, 51], [10, 50]]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}},
            {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[ring], [ring]]}},
        ],
    }
    region = region_from_geojson(fc, "fc.geojson")
    assert len(region.polygons) == 3
    assert region.geojson()["type"] == "MultiPolygon"


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"type": "Point", "coordinates": [10, 50]}, "not a Polygon"),
        ({"type": "Polygon", "coordinates": [[[50, 100], [51, 100], [51, 101], [50, 100]]]}, "not WGS84"),
        ({"type": "Polygon", "coordinates": [[[10, 50], [11, 50]]]}, "at least 4"),
        ({"type": "FeatureCollection", "features": []}, "no features"),
        ({"type": "Polygon", "coordinates": [[["a", 50], [11, 50], [11, 51], [10, 50]]]}, "not numbers"),
    ],
)
def test_bad_region_names_file_and_problem(tmp_path: Path, tree: dict, message: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(tree))
    with pytest.raises(RegionError, match=message) as err:
        load_region(path)
    assert "bad.geojson" in str(err.value)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text("{ not json")
    with pytest.raises(RegionError, match=r"broken\.geojson: not valid GeoJSON"):
        load_region(path)
