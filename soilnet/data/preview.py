"""PNG previews of cubes (RGB composite, NDVI, elevation, SOC, sample points), read decimated.

A preview never loads a full-resolution cube: rows and columns are read tile by tile with a
stride so that the picture is at most ``max_px`` pixels on its long side.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from soilnet import storage
from soilnet.data.raster_cube import RasterCube, decode

log = logging.getLogger(__name__)


def decimated(cube: RasterCube, bands: Sequence[str], max_px: int = 1000) -> tuple[np.ndarray, int]:
    """(band, h, w) decoded values sampled every ``step`` pixels, and the step."""
    step = max(1, int(np.ceil(max(cube.grid.height, cube.grid.width) / max_px)))
    idx = cube.band_index(bands)
    tile = cube.layout.shard
    out_h, out_w = -(-cube.grid.height // step), -(-cube.grid.width // step)
    out = np.full((len(idx), out_h, out_w), np.nan, dtype=np.float32)
    for row0, col0, h, w in cube.grid.tiles(tile - tile % step or step):
        r_first, c_first = -row0 % step, -col0 % step
        raw = cube.bands[idx, row0 + r_first : row0 + h : step, col0 + c_first : col0 + w : step]
        vals = decode(np.asarray(raw), cube.scale[idx], cube.offset[idx], cube.nodata)
        r_out, c_out = (row0 + r_first) // step, (col0 + c_first) // step
        out[:, r_out : r_out + vals.shape[1], c_out : c_out + vals.shape[2]] = vals
    return out, step


def _figure(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _save(fig: Figure, url: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    with storage.open_file(url, "wb") as f:
        f.write(buf.getvalue())
    return url


def _extent(cube: RasterCube) -> tuple[float, float, float, float]:
    west, south, east, north = cube.grid.bounds
    return (west, east, south, north)


def rgb_preview(cube: RasterCube, url: str, bands: Sequence[str] = ("SR_B4", "SR_B3", "SR_B2")) -> str:
    """True-colour composite with a 2-98 % stretch; nodata shown white."""
    rgb, _ = decimated(cube, bands)
    lo, hi = np.nanpercentile(rgb, 2), np.nanpercentile(rgb, 98)
    img = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1).transpose(1, 2, 0)
    img[np.isnan(img).any(axis=2)] = 1.0
    fig, ax = _figure(7, 7)
    ax.imshow(img, extent=_extent(cube))
    ax.set_title(f"RGB ({', '.join(bands)})")
    return _save(fig, url)


def band_preview(cube: RasterCube, band: str, url: str, cmap: str = "viridis", label: str | None = None) -> str:
    """One band with a colour bar."""
    values, _ = decimated(cube, [band])
    fig, ax = _figure(7, 6)
    im = ax.imshow(values[0], cmap=cmap, extent=_extent(cube))
    fig.colorbar(im, ax=ax, label=label or band)
    ax.set_title(band)
    return _save(fig, url)


def points_preview(cube: RasterCube, band: str, points: pd.DataFrame, url: str, column: str) -> str:
    """Sample points coloured by ``column`` over a grey background band."""
    values, _ = decimated(cube, [band])
    fig, ax = _figure(7, 6)
    ax.imshow(values[0], cmap="Greys", extent=_extent(cube), alpha=0.6)
    sc = ax.scatter(points["x"], points["y"], c=points[column], s=6, cmap="YlOrBr")
    fig.colorbar(sc, ax=ax, label=column)
    ax.set_title(f"{len(points)} sample points")
    return _save(fig, url)


def write_demo_previews(
    raster: RasterCube, truth: RasterCube, points: pd.DataFrame, folder: str | os.PathLike[str]
) -> list[str]:
    """The demo's previews: RGB, NDVI, elevation, true SOC map and sample points."""
    folder = os.fspath(folder)
    written = [
        rgb_preview(raster, storage.join(folder, "rgb.png")),
        band_preview(raster, "ndvi", storage.join(folder, "ndvi.png"), "RdYlGn"),
        band_preview(raster, "elevation", storage.join(folder, "elevation.png"), "terrain", "elevation (m)"),
        band_preview(truth, "soc_g_kg", storage.join(folder, "soc_true.png"), "YlOrBr", "SOC (g/kg)"),
        points_preview(raster, "elevation", points, storage.join(folder, "points.png"), "soc_g_kg"),
    ]
    log.info("previews written: %s", ", ".join(written))
    return written
