"""Regional breakdown against a hand-worked case: 6 points, 2 regions (one with a hole), 3 folds."""

import json

import numpy as np
import pytest

from soilnet.evaluation.regions import (
    OUTSIDE,
    assign_regions,
    distance_bins,
    format_grouped,
    grouped_metrics,
    nearest_training_km,
    read_regions,
)

# West: lon 0..2 with a hole at 0.8..1.2; East: a MultiPolygon of one square lon 2..4; all lat 0..2
GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"zone": "west"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]],
                    [[0.8, 0.8], [1.2, 0.8], [1.2, 1.2], [0.8, 1.2], [0.8, 0.8]],
                ],
            },
        },
        {
            "type": "Feature",
            "properties": {"zone": "east"},
            "geometry": {"type": "MultiPolygon", "coordinates": [[[[2, 0], [4, 0], [4, 2], [2, 2], [2, 0]]]]},
        },
    ],
}
LON = np.array([0.5, 1.5, 1.0, 2.5, 3.5, 5.0])  # the third point sits in west's hole, the last east of everything
LAT = np.array([1.0, 1.0, 1.0, 1.0, 1.5, 1.0])


@pytest.fixture
def regions(tmp_path):
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(GEOJSON))
    return read_regions(str(path), "zone")


def test_points_are_assigned_to_regions_with_holes_and_outside(regions):
    assert [r.name for r in regions] == ["west", "east"]
    assert list(assign_regions(LON, LAT, regions)) == ["west", "west", OUTSIDE, "east", "east", OUTSIDE]


def test_metrics_per_region_by_hand(regions):
    groups = assign_regions(LON, LAT, regions)
    y = np.array([1.0, 3.0, 5.0, 2.0, 4.0, 6.0])
    model = y + np.array([1.0, -1.0, 0.0, 2.0, 0.0, 3.0])
    table = grouped_metrics(y, {"model": model, "perfect": y}, groups, "region", "soc").set_index(["model", "region"])
    west, east = table.loc[("model", "west")], table.loc[("model", "east")]
    assert west["n"] == 2 and west["rmse"] == pytest.approx(1.0) and west["me"] == pytest.approx(0.0)
    assert east["rmse"] == pytest.approx(np.sqrt(2.0)) and east["mae"] == pytest.approx(1.0)
    assert east["r2"] == pytest.approx(1 - 4.0 / 2.0)  # SS_res 4, SS_tot 2
    assert table.loc[("model", OUTSIDE), "rmse"] == pytest.approx(np.sqrt(4.5))  # errors 0 and 3
    assert table.loc[("perfect", "west"), "rmse"] == 0.0
    assert "west" in format_grouped(table.reset_index(), "region")


def test_nearest_training_distance_and_bins_by_hand():
    x = np.array([0.0, 500.0, 3000.0, 3500.0, 20000.0])  # metres along a line
    folds = np.array([0, 1, 0, 1, 2])
    distance = nearest_training_km(x, np.zeros(5), folds)
    # point 0 (fold 0): nearest other-fold point at 500 m; point 2: 3500 m away -> 0.5 km; point 4: 16.5 km
    np.testing.assert_allclose(distance, [0.5, 0.5, 0.5, 0.5, 16.5])
    assert list(distance_bins([0.0, 0.99, 1.0, 7.0, 250.0], [0, 1, 5, 100])) == [
        "0-1 km", "0-1 km", "1-5 km", "5-100 km", ">=100 km",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="start at 0"):
        distance_bins([1.0], [1, 2])


def test_a_feature_without_the_name_field_is_named(tmp_path):
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({**GEOJSON, "features": [{**GEOJSON["features"][0], "properties": {"other": 1}}]}))
    with pytest.raises(ValueError, match=r"feature 0 has no property 'zone' \(properties: \['other'\]\)"):
        read_regions(str(path), "zone")
