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


def window_series(
    windows: PointWindows, raster: RasterCube, climate: ClimateCube, variables: list[str], months: int, end: str
) -> np.ndarray:
    """The climate series (W, T, V) of `variables` at each window's centre, read in one pass over the cube."""
    missing = [v for v in variables if v not in climate.variables]
    if missing:
        raise ValueError(f"{climate.url}: climate variables {missing} missing (cube has {climate.variables})")
    a, _, c0, _, e, f = raster.grid.transform
    centre = windows.origins + windows.size / 2
    series = climate.read_series(c0 + centre[:, 1] * a, f + centre[:, 0] * e, raster.grid.epsg, end, months)
    return series[:, :, [climate.variables.index(v) for v in variables]]


def read_windows(raster: RasterCube, bands: list[str], origins: np.ndarray, size: int) -> np.ndarray:
    """Decoded `bands` (W, C, P, P) of windows at `origins` (W, 2), cut from one read of the block spanning them."""
    index = raster.band_index(bands)
    r0, c0 = origins.min(axis=0)
    h, w = origins.max(axis=0) - (r0, c0) + size
    block = raster.read_raw(int(r0), int(c0), int(h), int(w))[index]
    block = decode(block, raster.scale[index], raster.offset[index], raster.nodata)
    return np.stack([block[:, r - r0 : r - r0 + size, c - c0 : c - c0 + size] for r, c in origins])


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


def tile_batches(origins: np.ndarray, tile_px: int) -> list[np.ndarray]:
    """Indices of the windows whose origins fall in each `tile_px` tile, tile by tile in row-major order."""
    _, tile_of = np.unique(origins // tile_px, axis=0, return_inverse=True)
    tile_of = tile_of.reshape(-1)
    order = np.argsort(tile_of, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(tile_of[order])) + 1)


def predict_points(
    bundle: ModelBundle,
    raster: RasterCube,
    climate: ClimateCube,
    lon: np.ndarray,
    lat: np.ndarray,
    climate_end: str,
    tile_windows: int = 8,
) -> tuple[np.ndarray, np.ndarray, PointWindows]:
    """Ensemble mean and std (N, k) in target units at lon/lat points, and the windows they were read in.

    Windows are read and predicted tile by tile: tiles of `tile_windows` lattice steps on a side, each
    read as one block (the raster's shards are read once per tile, not once per window).
    """
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    row, col = fractional_pixels(raster, lon, lat)
    inr, meta = all(isinstance(m, INRSoilModel) for m in bundle.models), bundle.meta
    size = meta.patch_px
    windows = group_by_window(row, col, size) if inr else centred_windows(row, col, size)
    k = len(meta.targets)
    mean, std = np.full((len(lon), k), np.nan, np.float32), np.full((len(lon), k), np.nan, np.float32)
    series = window_series(windows, raster, climate, meta.climate_variables, meta.months, climate_end)
    order = np.argsort(windows.window_of, kind="stable")
    bounds = np.searchsorted(windows.window_of[order], np.arange(len(windows.origins) + 1))
    for picked in tile_batches(windows.origins, max(size // 2, 1) * tile_windows):
        image = read_windows(raster, meta.bands, windows.origins[picked], size)
        members = [order[bounds[w] : bounds[w + 1]] for w in picked]
        queries = None
        if inr:
            padded = np.zeros((len(picked), max(len(m) for m in members), 2), np.float32)
            for i, m in enumerate(members):
                padded[i, : len(m)] = windows.queries[m]
            queries = torch.from_numpy(padded)
        m_t, s_t = ensemble_points(bundle, image, series[picked], queries)
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
