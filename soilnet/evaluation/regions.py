"""Regional breakdown of out-of-fold predictions: every metric per region and by distance to training data.

Regions come from a GeoJSON file (RFC 7946: lon/lat in WGS 84) of Polygon / MultiPolygon features
with a name property (permafrost zones or MLRAs in MISO; biogeographic regions or NUTS in Europe).
A point belongs to the first feature whose polygon contains it (holes excluded); points in no
feature are grouped as ``(outside)``. Each point's out-of-fold prediction was made by a model that
never saw its fold, so per-region metrics pool the points of a region over folds.

Generalisation to remote places is shown by the distance from each point to its nearest training
point, i.e. the nearest point of another fold (its fold model's training and validation rows), in
the units of the points' projected x / y (metres, reported in km), grouped into bins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from matplotlib.path import Path as PolygonPath
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from soilnet import storage
from soilnet.evaluation.metrics import METRIC_NAMES, regression_metrics

log = logging.getLogger(__name__)

OUTSIDE = "(outside)"
DEFAULT_BINS_KM: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
"""Lower edges (km) of the distance bins; the last bin is open-ended."""


@dataclass(frozen=True)
class Region:
    """A named region: polygons as (outer ring, holes) of (lon, lat) vertex arrays."""

    name: str
    polygons: list[tuple[np.ndarray, list[np.ndarray]]]

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """True for every point inside one of the polygons and outside its holes."""
        points = np.column_stack([lon, lat])
        inside = np.zeros(len(points), dtype=bool)
        for outer, holes in self.polygons:
            here = PolygonPath(outer).contains_points(points)
            for hole in holes:
                here &= ~PolygonPath(hole).contains_points(points)
            inside |= here
        return inside


def _rings(geometry: dict, where: str) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind == "Polygon":
        polygons = [geometry["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise ValueError(f"{where}: geometry type {kind!r}; expected Polygon or MultiPolygon")
    out = []
    for rings in polygons:
        arrays = [np.asarray(ring, dtype=np.float64)[:, :2] for ring in rings]
        if not arrays or any(a.ndim != 2 or len(a) < 3 for a in arrays):
            raise ValueError(f"{where}: a polygon ring has fewer than 3 (lon, lat) positions")
        out.append((arrays[0], arrays[1:]))
    return out


def read_regions(url: str, field: str) -> list[Region]:
    """The regions of a GeoJSON FeatureCollection, named by property `field` (errors name file, feature, field)."""
    with storage.open_file(url, "rb") as handle:
        try:
            collection = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{url}: not valid GeoJSON: {exc}") from exc
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list) or not features:
        raise ValueError(f"{url}: expected a GeoJSON FeatureCollection with at least one feature")
    regions = []
    for index, feature in enumerate(features):
        where = f"{url}: feature {index}"
        properties = feature.get("properties") or {}
        if field not in properties or properties[field] in (None, ""):
            raise ValueError(f"{where} has no property {field!r} (properties: {sorted(properties)})")
        regions.append(Region(str(properties[field]), _rings(feature.get("geometry"), where)))
    return regions


def assign_regions(lon: ArrayLike, lat: ArrayLike, regions: Sequence[Region]) -> np.ndarray:
    """The region name of every point (the first region containing it), ``(outside)`` for none."""
    x, y = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    names = np.full(x.shape, OUTSIDE, dtype=object)
    free = np.ones(x.shape, dtype=bool)
    for region in regions:
        hit = free & region.contains(x, y)
        names[hit] = region.name
        free &= ~hit
    log.info("regions: %d of %d points fall in no region", int(free.sum()), free.size)
    return names


def nearest_training_km(x: ArrayLike, y: ArrayLike, folds: ArrayLike) -> np.ndarray:
    """Distance (km) from every point to the nearest point of another fold; x / y in metres."""
    xy = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    fold_ids = np.asarray(folds)
    out = np.full(len(xy), np.inf)
    for fold in np.unique(fold_ids):
        test = fold_ids == fold
        if (~test).any():
            out[test], _ = cKDTree(xy[~test]).query(xy[test])
    return out / 1000.0


def distance_bins(distance_km: ArrayLike, edges_km: Sequence[float] = DEFAULT_BINS_KM) -> np.ndarray:
    """Bin label of every distance: ``"a-b km"`` for [a, b), ``">=a km"`` for the open last bin."""
    edges = np.asarray(edges_km, dtype=np.float64)
    if edges.size < 1 or edges[0] != 0.0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"distance bin edges must start at 0 and increase, got {list(edges_km)}")
    labels = [f"{a:g}-{b:g} km" for a, b in pairwise(edges)] + [f">={edges[-1]:g} km"]
    index = np.searchsorted(edges, np.asarray(distance_km, dtype=np.float64), side="right") - 1
    return np.asarray(labels, dtype=object)[index]


def grouped_metrics(
    observed: ArrayLike, predictions: Mapping[str, ArrayLike], groups: ArrayLike, column: str, target: str = ""
) -> pd.DataFrame:
    """Every metric of every model's out-of-fold predictions per group (pooled over folds).

    Columns: ``model``, ``target``, `column` (the group), ``n`` and the metrics (NaN for a group of
    fewer than 2 points). Groups keep their order of first appearance; rows without a prediction
    (NaN) are left out.
    """
    y = np.asarray(observed, dtype=np.float64)
    labels = np.asarray(groups, dtype=object)
    rows = []
    for model, values in predictions.items():
        p = np.asarray(values, dtype=np.float64)
        for group in dict.fromkeys(labels):
            mask = (labels == group) & np.isfinite(p) & np.isfinite(y)
            scores = regression_metrics(y[mask], p[mask]) if mask.sum() >= 2 else dict.fromkeys(METRIC_NAMES, np.nan)
            rows.append({"model": model, "target": target, column: group, "n": int(mask.sum()), **scores})
    return pd.DataFrame(rows, columns=["model", "target", column, "n", *METRIC_NAMES])


def format_grouped(frame: pd.DataFrame, column: str, digits: int = 3) -> str:
    """Plain-text table: one line per group and model with n and every metric."""
    header = [column, "model", "n", *METRIC_NAMES]
    body = [
        [str(row[column]), str(row["model"]), str(row["n"]), *(f"{row[m]:.{digits}f}" for m in METRIC_NAMES)]
        for _, row in frame.sort_values([column, "model"], kind="stable").iterrows()
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, ["-" * w for w in widths], *body]]  # fmt: skip
    return "\n".join(lines)
