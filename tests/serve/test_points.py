"""Points for the page: Web Mercator pixels, grid clusters checked against a brute-force count."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pyproj import Transformer

from soilnet.serve.points import TILE_PX, PointLayer, cluster_features, mercator_px


def test_mercator_pixels_match_pyproj() -> None:
    lon, lat = np.array([-170.0, 0.0, 8.3, 151.2]), np.array([-60.0, 0.0, 50.9, 70.0])
    zoom = 7
    px, py = mercator_px(lon, lat, zoom)
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    half = 20037508.342789244
    size = TILE_PX * 2**zoom
    np.testing.assert_allclose(px, (x + half) / (2 * half) * size, atol=1e-6)
    np.testing.assert_allclose(py, (half - y) / (2 * half) * size, atol=1e-6)


def test_clusters_count_every_point_once_per_cell() -> None:
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(5, 15, 5000), rng.uniform(45, 55, 5000)
    zoom, cell = 6, 64
    features = cluster_features(lon, lat, zoom, cell)
    px, py = mercator_px(lon, lat, zoom)
    brute = Counter(zip((px // cell).astype(int).tolist(), (py // cell).astype(int).tolist(), strict=True))
    assert sorted(f["properties"]["count"] for f in features) == sorted(brute.values())
    for f in features:  # each cluster sits at the mean of its points, inside its own cell
        cx, cy = mercator_px(
            np.array([f["geometry"]["coordinates"][0]]), np.array([f["geometry"]["coordinates"][1]]), zoom
        )
        key = (int(cx[0] // cell), int(cy[0] // cell))
        assert brute[key] == f["properties"]["count"]


def test_points_in_view_up_to_the_limit_then_clusters(published_map) -> None:
    points = PointLayer.load(published_map.points_url)
    assert points.targets == ["soc_g_kg"]
    df = published_map.points
    box = (df.lon.min(), df.lat.min(), df.lon.max(), df.lat.max())
    few = points.geojson(box, 12, max_points=len(df), cluster_px=64)
    assert not few["clustered"] and len(few["features"]) == len(df)
    first = few["features"][0]["properties"]
    assert first["id"] == df.id.iloc[0] and first["values"]["soc_g_kg"] == pytest.approx(df.soc_g_kg.iloc[0])
    assert first["date"] == "2018-06-01" and first["depth_bottom_cm"] == 20.0
    many = points.geojson(box, 12, max_points=len(df) - 1, cluster_px=64)
    assert many["clustered"] and sum(f["properties"]["count"] for f in many["features"]) == len(df)
    assert len(many["features"]) < len(df)
    empty = points.geojson((0.0, 0.0, 1.0, 1.0), 12, max_points=10, cluster_px=64)
    assert empty["features"] == [] and empty["total"] == 0
