"""Fixtures shared by the data tests: region GeoJSON files (boxes given in map units)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import Transformer


def box_region(epsg: int, west: float, south: float, east: float, north: float) -> dict[str, Any]:
    """A GeoJSON Feature (lon/lat) of a box given in ``epsg`` map units, edges densified."""
    t = np.linspace(0, 1, 21)
    xs = np.concatenate([west + (east - west) * t, np.full(21, east), east - (east - west) * t, np.full(21, west)])
    ys = np.concatenate(
        [np.full(21, south), south + (north - south) * t, np.full(21, north), north - (north - south) * t]
    )
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)] + [[float(lon[0]), float(lat[0])]]
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def region_file(tmp_path: Path) -> Path:
    """A region GeoJSON: a 90 km x 60 km box in EPSG:3035 (central Europe), corners on the 30 m lattice."""
    path = tmp_path / "region.geojson"
    path.write_text(json.dumps(box_region(3035, 4_320_000, 2_910_000, 4_410_000, 2_970_000)))
    return path


@pytest.fixture
def make_box_region() -> Any:
    """`box_region`, as a fixture."""
    return box_region
