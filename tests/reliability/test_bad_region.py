"""Random JSON as a region file: a `Region` or `RegionError` naming the file, never another crash (hypothesis)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soilnet.data.region import RegionError, load_region, region_grid

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-400, 400), st.floats(-180, 180, width=32)
)
positions = st.lists(numbers, min_size=0, max_size=3)
rings = st.lists(positions, min_size=0, max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
geometries = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", 3, None]),
        "coordinates": st.one_of(
            st.lists(rings, max_size=2), st.lists(st.lists(rings, max_size=2), max_size=2), json_values
        ),
    }
)
features = st.fixed_dictionaries({"type": st.just("Feature"), "geometry": st.one_of(geometries, json_values)})
documents = st.one_of(
    json_values,
    geometries,
    features,
    st.fixed_dictionaries(
        {"type": st.just("FeatureCollection"), "features": st.lists(st.one_of(features, json_values), max_size=3)}
    ),
)


def _load(payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "region.geojson"
        path.write_bytes(payload)
        try:
            region = load_region(path)
        except RegionError as exc:
            assert str(path) in str(exc)
        else:
            assert region.polygons and all(np.isfinite(r).all() for p in region.polygons for r in p)
            grid = region_grid(region, 3035, 1000.0)
            assert grid.width >= 1 and grid.height >= 1


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "FeatureCollection", "features": [None]},
        {"type": "FeatureCollection", "features": "abc"},
        {"type": "MultiPolygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": [5]},
        {"type": "Polygon", "coordinates": 5},
        {"type": "Polygon"},
    ],
)
def test_malformed_geometries_give_a_region_error(doc):
    _load(json.dumps(doc).encode())


@FUZZ
@given(documents)
def test_random_geojson_gives_a_region_or_a_region_error(doc):
    _load(json.dumps(doc, allow_nan=True).encode())


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_give_a_region_error(payload):
    _load(payload)
