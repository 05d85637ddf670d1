"""The demo's last stage: map the demo region with a model and measure every mapped target against its truth.

The demo region saves its noise-free fields (``truth.zarr``: SOC, pH, the permafrost and taxonomy classes),
so the published map can be scored honestly: every map cell of a continuous target is compared with the
mean true value over the cell's input pixels, and every cell of a class map with the most frequent true
class over those pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from soilnet.data.raster_cube import open_raster_cube
from soilnet.evaluation.classification import confusion_matrix, confusion_scores
from soilnet.evaluation.metrics import regression_metrics
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.job import map_cube_url, run_map
from soilnet.mapping.map_cube import open_map_cube
from soilnet.mapping.model_card import bundle_card
from soilnet.mapping.outputs import MapOutputs, export_outputs
from soilnet.mapping.reliability import aoa_fraction

log = logging.getLogger(__name__)


@dataclass
class MapDemoReport:
    """The demo map: where it went, how long it took, its error against the true SOC map and the share of its
    pixels inside the area of applicability (None when the bundle has no AOA)."""

    map_url: str
    outputs: MapOutputs
    tiles: int
    seconds: float
    error: dict[str, float]
    cells_scored: int
    aoa_fraction: float | None = None
    #: Scores of every further mapped target against its true map (regression metrics, or accuracy and
    #: balanced accuracy and macro-F1 of a class map), with the cells scored.
    further: dict[str, tuple[dict[str, float], int]] = field(default_factory=dict)


def demo_map_config(
    raster: str,
    climate: str,
    region: str,
    out: str,
    bundle: str,
    resolution_m: float,
    run_id: str | None,
    executor: str = "ray",
    tracking_uri: str | None = None,
    targets: list[str] | None = None,
) -> MapConfig:
    """Map settings for the demo region (the same grid conventions as `jobs/configs/map.yaml`); `targets`:
    every output of the bundle (None: SOC)."""
    return MapConfig(
        raster=raster,
        climate=climate,
        region=region,
        out=out,
        model=ModelSourceConfig(bundle=bundle),
        targets=targets or ["soc_g_kg"],
        climate_end="2018-06",
        resolution_m=resolution_m,
        tile_px=64,
        chunk_px=64,
        mlflow_run_id=run_id,
        mlflow_tracking_uri=tracking_uri,
        executor=executor,
    )


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block, ignoring NaN; partial edge blocks are averaged too."""
    h, w = values.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(values, ((0, ph), (0, pw)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    valid = np.isfinite(blocks).sum(axis=(1, 3))
    total = np.nansum(blocks, axis=(1, 3))
    return np.where(valid > 0, total / np.maximum(valid, 1), np.nan)


def block_mode(codes: np.ndarray, factor: int, n_classes: int) -> np.ndarray:
    """Most frequent class code of each ``factor`` x ``factor`` block, ignoring NaN (NaN where none)."""
    h, w = codes.shape
    padded = np.pad(codes, ((0, -h % factor), (0, -w % factor)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    counts = np.stack([(blocks == k).sum(axis=(1, 3)) for k in range(n_classes)])
    return np.where(counts.sum(axis=0) > 0, counts.argmax(axis=0).astype(np.float64), np.nan)


def map_errors(map_url: str, truth_url: str) -> dict[str, tuple[dict[str, float], int]]:
    """Scores of every target of a map against its band of `truth_url`, with the cells scored: regression
    metrics against each cell's mean truth, or for a class map accuracy, balanced accuracy and macro-F1
    against each cell's most frequent true class. The truth is read once."""
    cube, truth = open_map_cube(map_url), open_raster_cube(truth_url)
    factor = round(cube.grid.res / truth.grid.res)
    west, _, _, north = cube.grid.bounds
    row0, col0 = truth.grid.rowcol(west + truth.grid.res / 2, north - truth.grid.res / 2)
    fields = truth.read_window(int(row0), int(col0), cube.grid.height * factor, cube.grid.width * factor)
    scores = {}
    for layer in cube.targets:
        labels = cube.classes.get(layer)
        true_field = fields[truth.band_index([layer])[0]]
        expected = block_mode(true_field, factor, len(labels)) if labels else block_mean(true_field, factor)
        predicted = cube.read(layer).astype(np.float64)
        if labels:
            predicted[predicted >= len(labels)] = np.nan  # the class layer's nodata code
        ok = np.isfinite(expected) & np.isfinite(predicted)
        if ok.sum() < 2:
            raise ValueError(f"{map_url}: fewer than 2 map cells of {layer!r} overlap the true map {truth_url}")
        if labels:
            confusion = confusion_matrix(expected[ok].astype(int), predicted[ok].astype(int), len(labels))
            scores[layer] = confusion_scores(confusion), int(ok.sum())
        else:
            scores[layer] = regression_metrics(expected[ok], predicted[ok]), int(ok.sum())
    return scores


def map_demo(
    raster: str,
    climate: str,
    region: str,
    truth: str,
    out: str,
    bundle: str,
    resolution_m: float = 240.0,
    run_id: str | None = None,
    executor: str = "ray",
    tracking_uri: str | None = None,
) -> MapDemoReport:
    """Map the demo region with ``bundle``, publish COG / STAC / preview, and score the map."""
    card = bundle_card(bundle)
    targets = card.targets or ["soc_g_kg"]
    cfg = demo_map_config(raster, climate, region, out, bundle, resolution_m, run_id, executor, tracking_uri, targets)
    result = run_map(cfg, overwrite=True)
    outputs = export_outputs(cfg)
    scores = map_errors(map_cube_url(out), truth)
    error, cells = scores.pop(targets[0])
    log.info("demo map: RMSE %.2f g/kg, R2 %.2f over %d cells", error["rmse"], error["r2"], cells)
    share = aoa_fraction(open_map_cube(result.map_url))
    return MapDemoReport(result.map_url, outputs, result.tiles, result.seconds, error, cells, share, scores)
