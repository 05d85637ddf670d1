"""Regional analysis of a cross-validation (`soilnet evaluate --regions FILE --region-field NAME`).

Every metric of every model's out-of-fold predictions per region of a GeoJSON file, and per bin of
the distance from each point to its nearest training point (`soilnet.evaluation.regions`). Points
are placed in regions by the lon / lat of the points table. The tables go to the printed comparison,
to the run's artifacts (``comparison_regions.txt``, ``regional_metrics.csv``, ``distance_metrics.csv``)
and to its metrics (``region.<region>.<model>.<metric>``, ``distance.<bin>.<model>.<metric>``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from soilnet.data.points import read_points
from soilnet.data.workspace import DataConfig
from soilnet.evaluation.metrics import METRIC_NAMES
from soilnet.evaluation.regions import (
    DEFAULT_BINS_KM,
    assign_regions,
    distance_bins,
    format_grouped,
    grouped_metrics,
    nearest_training_km,
    read_regions,
)
from soilnet.tracking.runs import RunTracker

log = logging.getLogger(__name__)


@dataclass
class RegionalReport:
    """Metrics per region and per distance bin, and their printed tables."""

    by_region: pd.DataFrame
    by_distance: pd.DataFrame
    text: str


def point_lonlat(data: DataConfig, ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Lon / lat of the points table's rows `ids` (errors name an id the table lacks)."""
    points, _ = read_points(data.url("points"), allow_missing=True)
    table = points.assign(id=points["id"].astype(str)).drop_duplicates("id").set_index("id")
    wanted = ids.astype(str)
    missing = wanted[~wanted.isin(table.index)]
    if len(missing):
        raise ValueError(f"{data.url('points')}: no point with id {missing.iloc[0]!r} of the cross-validation")
    rows = table.loc[wanted.to_numpy()]
    return rows["lon"].to_numpy(np.float64), rows["lat"].to_numpy(np.float64)


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def regional_report(
    data: DataConfig,
    table: pd.DataFrame,
    predictions: Mapping[str, np.ndarray],
    regions_url: str,
    field: str,
    target: str,
    tracker: RunTracker | None = None,
    bins_km: Sequence[float] = DEFAULT_BINS_KM,
) -> RegionalReport:
    """Metrics per region and per nearest-training distance bin of out-of-fold `predictions` (model -> (N,)).

    `table` is the cross-validation's labelled table (``id``, ``x``, ``y``, ``target``, ``fold``).
    """
    lon, lat = point_lonlat(data, table["id"])
    regions = assign_regions(lon, lat, read_regions(regions_url, field))
    distance = nearest_training_km(table["x"], table["y"], table["fold"])
    observed = table["target"].to_numpy(np.float64)
    by_region = grouped_metrics(observed, predictions, regions, "region", target)
    by_distance = grouped_metrics(observed, predictions, distance_bins(distance, bins_km), "distance", target)
    text = "\n\n".join(
        [
            f"per region ({field} of {regions_url}), out-of-fold predictions pooled over folds:",
            format_grouped(by_region, "region"),
            "by distance to the nearest training point (another fold's point):",
            format_grouped(by_distance, "distance"),
        ]
    )
    if tracker is not None:
        tracker.log_text(text, "comparison_regions.txt")
        tracker.log_text(by_region.to_csv(index=False), "regional_metrics.csv")
        tracker.log_text(by_distance.to_csv(index=False), "distance_metrics.csv")
        metrics = {}
        for frame, column in ((by_region, "region"), (by_distance, "distance")):
            for row in frame.itertuples(index=False):
                group = _key(str(getattr(row, column)))
                for metric in ("n", *METRIC_NAMES):
                    metrics[f"{column}.{group}.{row.model}.{metric}"] = float(getattr(row, metric))
        tracker.log_metrics(metrics)
    log.info(
        "regional analysis: %d regions, %d distance bins",
        by_region["region"].nunique(),
        by_distance["distance"].nunique(),
    )
    return RegionalReport(by_region, by_distance, text)
