"""The sample points as GeoJSON for the page: every point in view up to a limit, grid clusters beyond it.

Clusters are the points binned into square cells of ``cluster_px`` screen pixels at the requested
zoom (Web Mercator), one feature per occupied cell at the cell's mean position with its count, so
a continental table of tens of thousands of points is never drawn one by one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from soilnet.data.points import read_points, target_columns

TILE_PX = 256
MAX_LAT = 85.05112878


@dataclass
class PointLayer:
    """The points table held in memory (lon, lat, id, source, date and target values)."""

    table: pd.DataFrame
    targets: list[str]

    @classmethod
    def load(cls, url: str) -> PointLayer:
        """Read and validate a points table (errors name the file, column and row)."""
        df, _ = read_points(url)
        targets = target_columns(df)
        keep = ["id", "lon", "lat", "source", "date", "depth_top_cm", "depth_bottom_cm", *targets]
        return cls(df[keep].reset_index(drop=True), targets)

    def in_bbox(self, west: float, south: float, east: float, north: float) -> pd.DataFrame:
        """Rows inside a WGS84 box."""
        lon, lat = self.table["lon"].to_numpy(), self.table["lat"].to_numpy()
        return self.table[(lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)]

    def geojson(
        self, bbox: tuple[float, float, float, float], zoom: int, max_points: int, cluster_px: int
    ) -> dict[str, Any]:
        """A FeatureCollection of the points in ``bbox``: single points, or clusters past ``max_points``."""
        rows = self.in_bbox(*bbox)
        if len(rows) <= max_points:
            features = [_point_feature(row, self.targets) for row in rows.itertuples(index=False)]
            clustered = False
        else:
            features = cluster_features(rows["lon"].to_numpy(), rows["lat"].to_numpy(), zoom, cluster_px)
            clustered = True
        return {"type": "FeatureCollection", "features": features, "total": len(rows), "clustered": clustered}


def _clean(value: Any) -> Any:
    """A table cell as JSON: NaN and NaT as null, dates as YYYY-MM-DD."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, dt.date):  # datetime and pandas Timestamp too: the sampling day
        return value.isoformat()[:10]
    return value if isinstance(value, int | str) else str(value)


def _point_feature(row: Any, targets: list[str]) -> dict[str, Any]:
    props = {k: _clean(getattr(row, k)) for k in ("id", "source", "date", "depth_top_cm", "depth_bottom_cm")}
    props["values"] = {t: _clean(getattr(row, t)) for t in targets}
    geometry = {"type": "Point", "coordinates": [float(row.lon), float(row.lat)]}
    return {"type": "Feature", "geometry": geometry, "properties": props}


def mercator_px(lon: np.ndarray, lat: np.ndarray, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Global Web Mercator pixel coordinates of WGS84 points at a zoom level."""
    size = TILE_PX * 2.0**zoom
    sin = np.sin(np.radians(np.clip(lat, -MAX_LAT, MAX_LAT)))
    x = (lon + 180.0) / 360.0 * size
    y = (0.5 - np.log((1 + sin) / (1 - sin)) / (4 * np.pi)) * size
    return x, y


def cluster_features(lon: np.ndarray, lat: np.ndarray, zoom: int, cluster_px: int) -> list[dict[str, Any]]:
    """One feature per occupied ``cluster_px`` cell: mean position and point count."""
    px, py = mercator_px(lon, lat, zoom)
    cells = np.stack([px // cluster_px, py // cluster_px], axis=1).astype(np.int64)
    _, which, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    which = which.ravel()
    mean_lon = np.bincount(which, weights=lon) / counts
    mean_lat = np.bincount(which, weights=lat) / counts
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(a), float(b)]},
            "properties": {"cluster": True, "count": int(n)},
        }
        for a, b, n in zip(mean_lon, mean_lat, counts, strict=True)
    ]
