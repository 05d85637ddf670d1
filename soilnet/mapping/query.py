"""Predictions at arbitrary lon/lat points (`soilnet query --points FILE`), each window read once.

Points are projected onto the raster grid. With an INR model (`soilnet.models.inr_model`) they are
grouped by window: windows of the model's P px on a lattice of stride P / 2, each point in the window
whose centre is nearest (so within P / 4 px of it). Each window is read once (its bands, and the
climate series of its centre pixel), and every fold model predicts all the window's points in one
pass at their exact positions. A model without an INR predicts each point from the P px window
centred on it, as in training: one window per point. The ensemble's mean and std combine the fold
models like `soilnet.recipes.bundle.ModelBundle.predict` (spread across folds plus mean aleatoric
variance).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from pyproj import Transformer

from soilnet.data.climate_cube import ClimateCube
from soilnet.data.normalisation import normalise_batch
from soilnet.data.raster_cube import RasterCube, decode
from soilnet.models.inr_model import INRSoilModel
from soilnet.recipes.bundle import ModelBundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointWindows:
    """The windows a set of points is read in: origins (W, 2) as (row0, col0), each point's window and query."""

    origins: np.ndarray
    window_of: np.ndarray
    queries: np.ndarray
    size: int


def fractional_pixels(raster: RasterCube, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) of lon/lat points on the raster grid: pixel (r, c) spans [r, r + 1) x [c, c + 1)."""
    grid = raster.grid
    x, y = Transformer.from_crs(4326, grid.epsg, always_xy=True).transform(np.asarray(lon), np.asarray(lat))
    a, _, c, _, e, f = grid.transform
    row, col = (np.asarray(y) - f) / e, (np.asarray(x) - c) / a
    outside = (row < 0) | (row >= grid.height) | (col < 0) | (col >= grid.width)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"point {i} (lon {lon[i]:.6f}, lat {lat[i]:.6f}) is outside the raster cube {raster.url}")
    return row, col


def group_by_window(row: np.ndarray, col: np.ndarray, size: int) -> PointWindows:
    """Each point in the window (of `size` px, lattice stride size / 2) whose centre is nearest, with its query."""
    step = max(size // 2, 1)
    cells = np.stack([np.round((row - size / 2) / step), np.round((col - size / 2) / step)], axis=1).astype(np.int64)
    keys, window_of = np.unique(cells, axis=0, return_inverse=True)
    origins = keys * step
    queries = np.stack(
        [(col - origins[window_of, 1]) / size * 2 - 1, (row - origins[window_of, 0]) / size * 2 - 1], axis=1
    )
    return PointWindows(origins, window_of.reshape(-1), queries, size)


def centred_windows(row: np.ndarray, col: np.ndarray, size: int) -> PointWindows:
    """One window per point, centred on its pixel as training windows are (`RasterCube.window_at`)."""
    origins = np.stack([np.floor(row), np.floor(col)], axis=1).astype(np.int64) - size // 2
    centre = (size // 2 + 0.5) / size * 2 - 1
    return PointWindows(origins, np.arange(len(row)), np.full((len(row), 2), centre), size)


def read_inputs(
    windows: PointWindows, raster: RasterCube, climate: ClimateCube, months: int, climate_end: str, picked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded bands (W', C, P, P) and the climate series (W', T, V) at the centre of the `picked` windows."""
    p = windows.size
    image = np.stack([raster.read_raw(int(r), int(c), p, p) for r, c in windows.origins[picked]])
    image = decode(image.swapaxes(0, 1), raster.scale, raster.offset, raster.nodata).swapaxes(0, 1)
    a, _, c0, _, e, f = raster.grid.transform
    centre = windows.origins[picked] + p / 2
    x, y = c0 + centre[:, 1] * a, f + centre[:, 0] * e
    series = climate.read_series(x, y, raster.grid.epsg, climate_end, months)
    return image, series


@torch.no_grad()
def ensemble_points(
    bundle: ModelBundle, image: np.ndarray, series: np.ndarray, queries: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ensemble mean and std (W, Q, k) at queries (W, Q, 2) of decoded windows, or (W, 1, k) at their centres."""
    batch = normalise_batch({"image": image, "climate": series}, bundle.stats, bundle.meta.mask_channel)
    image_t, climate_t = torch.from_numpy(batch["image"]), torch.from_numpy(batch["climate"])
    means, variances = [], []
    for model, (shift, scale) in zip(bundle.models, bundle.target_scaling(), strict=True):
        if queries is None:
            out = {k: v.unsqueeze(1) for k, v in model(image_t, climate_t).items()}
        else:
            out = model.predict_points(image_t, climate_t, queries)
        means.append(out["prediction"].double() * scale + shift)
        if "log_var" in out:
            variances.append(out["log_var"].double().exp() * scale**2)
    stack = torch.stack(means)
    variance = stack.var(dim=0, unbiased=False)
    if variances:
        variance = variance + torch.stack(variances).mean(dim=0)
    return stack.mean(dim=0), variance.sqrt()


def predict_points(
    bundle: ModelBundle,
    raster: RasterCube,
    climate: ClimateCube,
    lon: np.ndarray,
    lat: np.ndarray,
    climate_end: str,
    batch_windows: int = 64,
) -> tuple[np.ndarray, np.ndarray, PointWindows]:
    """Ensemble mean and std (N, k) in target units at lon/lat points, and the windows they were read in."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    row, col = fractional_pixels(raster, lon, lat)
    inr = all(isinstance(m, INRSoilModel) for m in bundle.models)
    size = bundle.meta.patch_px
    windows = group_by_window(row, col, size) if inr else centred_windows(row, col, size)
    k = len(bundle.meta.targets)
    mean, std = np.full((len(lon), k), np.nan, np.float32), np.full((len(lon), k), np.nan, np.float32)
    order = np.argsort(windows.window_of, kind="stable")
    bounds = np.searchsorted(windows.window_of[order], np.arange(len(windows.origins) + 1))
    for first in range(0, len(windows.origins), batch_windows):
        picked = np.arange(first, min(first + batch_windows, len(windows.origins)))
        image, series = read_inputs(windows, raster, climate, bundle.meta.months, climate_end, picked)
        members = [order[bounds[w] : bounds[w + 1]] for w in picked]
        queries = None
        if inr:
            width = max(len(m) for m in members)
            padded = np.zeros((len(picked), width, 2), np.float32)
            for i, m in enumerate(members):
                padded[i, : len(m)] = windows.queries[m]
            queries = torch.from_numpy(padded)
        m_t, s_t = ensemble_points(bundle, image, series, queries)
        for i, m in enumerate(members):
            mean[m], std[m] = m_t[i, : len(m)].float().numpy(), s_t[i, : len(m)].float().numpy()
    log.info("predicted %d points from %d windows (%s)", len(lon), len(windows.origins), "INR" if inr else "centred")
    return mean, std, windows


def read_query_points(url: str) -> pd.DataFrame:
    """A CSV or Parquet table with ``lon`` and ``lat`` columns (WGS84 degrees); errors name the file and row."""
    from soilnet import storage

    with storage.open_file(url, "rb") as handle:
        table = pd.read_parquet(handle) if url.endswith(".parquet") else pd.read_csv(handle)
    missing = [c for c in ("lon", "lat") if c not in table.columns]
    if missing:
        raise ValueError(f"{url}: points need columns lon and lat (WGS84 degrees); missing {missing}")
    coords = table[["lon", "lat"]].apply(pd.to_numeric, errors="coerce").to_numpy()
    bad = ~np.isfinite(coords).all(axis=1) | (np.abs(coords[:, 1]) > 90) | (np.abs(coords[:, 0]) > 180)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{url}: row {i + 1} has no valid lon/lat: {table.iloc[i][['lon', 'lat']].tolist()}")
    return table


def open_bundle(model: str, registry: str | None) -> ModelBundle:
    """A bundle folder URL, or a registered model (``models:/<name>@<alias>``) downloaded from `registry`."""
    import tempfile

    from soilnet.mapping.model_card import download_registered
    from soilnet.recipes.bundle import load_bundle

    if not model.startswith("models:/"):
        return load_bundle(model)
    with tempfile.TemporaryDirectory(prefix="soilnet-query-") as folder:
        return load_bundle(download_registered(model, folder, registry))


def prediction_table(points: pd.DataFrame, bundle: ModelBundle, mean: np.ndarray, std: np.ndarray) -> pd.DataFrame:
    """The points with ``<target>`` and ``<target>_std`` columns for every target of the bundle."""
    out = points.copy()
    for i, name in enumerate(bundle.meta.targets):
        out[name] = mean[:, i]
        out[f"{name}_std"] = std[:, i]
    return out
