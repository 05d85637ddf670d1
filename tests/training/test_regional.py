"""Regional analysis of a cross-validation on the tiny demo's points: regions by lon/lat, distances, logging."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soilnet.data.folds import FoldConfig
from soilnet.data.points import read_points
from soilnet.data.workspace import DataConfig
from soilnet.evaluation.regions import OUTSIDE
from soilnet.training.job import labelled_table
from soilnet.training.regional import regional_report


class Recorder:
    """The logging calls a tracker would send."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.metrics: dict[str, float] = {}

    def log_text(self, text: str, artifact_file: str) -> None:
        self.texts[artifact_file] = text

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.metrics.update(metrics)


def test_regions_split_the_demo_points_and_everything_is_logged(tiny_demo, tmp_path):
    data = DataConfig(root=tiny_demo.root)
    table = labelled_table(data, "soc_g_kg", FoldConfig(k=3))
    points, _ = read_points(data.url("points"))
    split = float(np.median(points["lon"]))

    def zone(name: str, lo: float, hi: float) -> dict:
        ring = [[lo, -90], [hi, -90], [hi, 90], [lo, 90], [lo, -90]]
        return {"type": "Feature", "properties": {"zone": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}

    geojson = {"type": "FeatureCollection", "features": [zone("west", -180, split), zone("east", split, 180)]}
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(geojson))
    y = table["target"].to_numpy(np.float64)
    west = points.set_index(points["id"].astype(str)).loc[table["id"], "lon"].to_numpy() < split
    model = y + np.where(west, 1.0, 3.0)  # a constant error per zone: RMSE 1 in the west, 3 in the east
    tracker = Recorder()
    report = regional_report(data, table, {"model": model}, str(path), "zone", "soc_g_kg", tracker)

    by_region = report.by_region.set_index("region")
    assert set(by_region.index) <= {"west", "east", OUTSIDE} and OUTSIDE not in by_region.index
    assert by_region.loc["west", "rmse"] == pytest.approx(1.0) and by_region.loc["east", "rmse"] == pytest.approx(3.0)
    assert by_region["n"].sum() == len(table)
    assert report.by_distance["n"].sum() == len(table)
    assert tracker.metrics["region.west.model.rmse"] == pytest.approx(1.0)
    assert set(tracker.texts) == {"comparison_regions.txt", "regional_metrics.csv", "distance_metrics.csv"}
    assert "per region (zone of" in report.text and "nearest training point" in report.text
