"""Landed Earth Engine tiles: where to read them (Cloud Storage or a mirror) and their checked pixels.

Earth Engine exports each tile on the cube grid (the ``crsTransform`` of the tile's corner), so a
landed GeoTIFF must sit on whole pixels of that grid: same CRS, same pixel size, corner an integer
number of pixels from the grid's corner, inside the grid. Its pixels are then copied, never
resampled. Anything else (another CRS, a sub-pixel shift, the wrong bands) is an error naming the
tile's URL.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from soilnet import storage
from soilnet.data.earth_engine.acquire import destination_of
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.grid import Grid

log = logging.getLogger(__name__)

#: Largest distance (in pixels) of a tile corner from the grid lattice still taken as aligned.
ALIGN_TOLERANCE_PX = 1e-6


class LandedTileError(ValueError):
    """A landed tile cannot be ingested; the message names the tile's URL and the problem."""


def source_url(landed_url: str, cfg: AcquireConfig) -> str:
    """Where to read a landed tile: its own URL, or the same path under ``cfg.landing_mirror``."""
    if cfg.landing_mirror is None:
        if landed_url.startswith("gdrive://"):
            raise LandedTileError(
                f"{landed_url}: Drive tiles cannot be read directly; copy the folder and set acquire.landing_mirror"
            )
        return landed_url
    root = destination_of(cfg).root()
    if not landed_url.startswith(root + "/"):
        raise LandedTileError(f"{landed_url}: not under {root}, the landing root that landing_mirror mirrors")
    return storage.join(cfg.landing_mirror, landed_url[len(root) + 1 :])


@dataclass(frozen=True)
class TilePlacement:
    """Where a landed tile sits in the cube grid, and what its bands are."""

    url: str
    row0: int
    col0: int
    height: int
    width: int
    band_names: tuple[str, ...]  # the GeoTIFF band descriptions ("" where unnamed)
    nodata: float

    def windows(self, side: int) -> Iterator[tuple[int, int, int, int]]:
        """Row-major (row0, col0, height, width) windows of at most ``side`` px, in tile pixels."""
        for r in range(0, self.height, side):
            for c in range(0, self.width, side):
                yield r, c, min(side, self.height - r), min(side, self.width - c)


@contextlib.contextmanager
def open_tile(url: str) -> Iterator[rasterio.DatasetReader]:
    """Open a landed GeoTIFF (local, s3:// or gs://); unreadable files are errors naming the URL."""
    with storage.rasterio_env(url):
        try:
            src = rasterio.open(storage.gdal_path(url))
        except RasterioError as exc:
            raise LandedTileError(f"{url}: not a readable GeoTIFF ({exc})") from exc
        with src:
            yield src


def _pixel_offset(value: float, origin: float, res: float, what: str, url: str) -> int:
    offset = (value - origin) / res
    if abs(offset - round(offset)) > ALIGN_TOLERANCE_PX:
        raise LandedTileError(
            f"{url}: tile {what} is {offset:.6f} px from the cube grid's, not a whole number of pixels "
            "(misaligned transform: the tile was not exported on the cube grid)"
        )
    return round(offset)


def place_tile(src: rasterio.DatasetReader, url: str, grid: Grid, default_nodata: float) -> TilePlacement:
    """Check that a landed tile lies on whole pixels of ``grid`` and find its pixel window."""
    epsg = src.crs.to_epsg() if src.crs is not None else None
    if epsg != grid.epsg:
        raise LandedTileError(f"{url}: tile CRS is {src.crs}, the cube grid is {grid.crs}")
    a, b, c, d, e, f = src.transform[:6]
    res = grid.res
    if b or d or not np.isclose(a, res, rtol=1e-9, atol=0) or not np.isclose(-e, res, rtol=1e-9, atol=0):
        raise LandedTileError(
            f"{url}: tile pixels are ({a}, {e}) map units with rotation ({b}, {d}); the cube grid has {res} "
            "square north-up pixels (misaligned transform)"
        )
    col0 = _pixel_offset(c, grid.transform[2], res, "west edge", url)
    row0 = _pixel_offset(f, grid.transform[5], -res, "north edge", url)
    if row0 < 0 or col0 < 0 or row0 + src.height > grid.height or col0 + src.width > grid.width:
        raise LandedTileError(
            f"{url}: tile rows {row0}..{row0 + src.height}, cols {col0}..{col0 + src.width} extend beyond the "
            f"cube grid ({grid.height} x {grid.width} px)"
        )
    names = tuple(name or "" for name in src.descriptions)
    nodata = default_nodata if src.nodata is None else float(src.nodata)
    return TilePlacement(url, row0, col0, src.height, src.width, names, nodata)


def check_bands(tile: TilePlacement, expected: Sequence[str]) -> None:
    """The tile has exactly the ``expected`` bands, in order (unnamed bands are taken in export order)."""
    if len(tile.band_names) != len(expected):
        raise LandedTileError(f"{tile.url}: has {len(tile.band_names)} bands, expected {len(expected)}: {expected}")
    if any(tile.band_names):
        for band, (got, want) in enumerate(zip(tile.band_names, expected, strict=True), start=1):
            if got != want:
                raise LandedTileError(f"{tile.url}: band {band} is named {got!r}, expected {want!r}")


def read_float(
    src: rasterio.DatasetReader, tile: TilePlacement, window: tuple[int, int, int, int], indexes: Sequence[int]
) -> np.ndarray:
    """Float32 (band, h, w) pixels of a window of the tile (1-based ``indexes``); nodata becomes NaN."""
    r, c, h, w = window
    try:
        values = src.read(list(indexes), window=Window(c, r, w, h), out_dtype="float32")
    except RasterioError as exc:
        raise LandedTileError(f"{tile.url}: read failed, file corrupt or truncated? ({exc})") from exc
    values[values == np.float32(tile.nodata)] = np.nan
    return values


def read_classes(
    src: rasterio.DatasetReader, tile: TilePlacement, window: tuple[int, int, int, int], fill: int
) -> np.ndarray:
    """Uint8 (h, w) class codes of band 1 of a window of the tile; nodata becomes ``fill``."""
    r, c, h, w = window
    try:
        values = src.read(1, window=Window(c, r, w, h))
    except RasterioError as exc:
        raise LandedTileError(f"{tile.url}: read failed, file corrupt or truncated? ({exc})") from exc
    return np.where(values == tile.nodata, fill, values).astype(np.uint8)


def climate_band_indexes(tile: TilePlacement, variables: Sequence[str], months: np.ndarray) -> np.ndarray:
    """(variable, month) -> 1-based band of a climate tile, from band names ``<variable>_<YYYY-MM>``.

    Variables follow the declared order and months the cube's time axis, whatever the band order
    of the file; every variable must have every month, each once.
    """
    if not all(tile.band_names):
        raise LandedTileError(f"{tile.url}: climate bands must be named <variable>_<YYYY-MM>; some bands are unnamed")
    months = np.asarray(months).astype("datetime64[M]")
    first = months[0]
    index = np.zeros((len(variables), len(months)), dtype=np.int64)
    for band, name in enumerate(tile.band_names, start=1):
        var, _, month_text = name.rpartition("_")
        try:
            month = np.datetime64(month_text, "M")
        except ValueError:
            month = None
        if var not in variables or month is None or len(month_text) != 7:
            raise LandedTileError(
                f"{tile.url}: band {band} is named {name!r}, not <variable>_<YYYY-MM> with a variable of "
                f"{list(variables)}"
            )
        slot = int((month - first).astype(np.int64))
        if not 0 <= slot < len(months):
            raise LandedTileError(f"{tile.url}: band {name!r} is outside the cube's months {months[0]}..{months[-1]}")
        vi = list(variables).index(var)
        if index[vi, slot]:
            raise LandedTileError(f"{tile.url}: bands {index[vi, slot]} and {band} are both named {name!r}")
        index[vi, slot] = band
    missing = np.argwhere(index == 0)
    if missing.size:
        vi, slot = missing[0]
        raise LandedTileError(
            f"{tile.url}: month {months[slot]} of variable {variables[vi]!r} is missing "
            f"({len(missing)} variable-months missing; the series must be monthly without gaps)"
        )
    return index
