"""NetCDF files (TerraClimate layout: one variable per file per year; or multi-variable) -> climate cube.

Variables are ordered by the declared list, never by the order files are found in. Values are
decoded with CF conventions (``scale_factor`` / ``add_offset``; ``_FillValue`` / ``missing_value``
become NaN; true zeros stay zeros). Months are taken from the CF time axis and must be consecutive
over the whole period; a gap is an error naming the variable, the missing month and the files
around it. The cube grid is the source lon/lat grid (optionally cropped) or another grid regridded
with nearest / bilinear. Blocks of whole chunks are written one at a time (memory bounded) and
recorded, so an interrupted ingest resumes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from soilnet import storage
from soilnet.data.climate_cube import (
    KIND,
    ClimateCube,
    ClimateLayout,
    check_monthly,
    create_climate_cube,
    open_climate_cube,
    write_climate_block,
)
from soilnet.data.grid import Grid
from soilnet.data.ingest.config import ClimateIngestConfig
from soilnet.data.ingest.resume import IngestProgress, half_created
from soilnet.data.zarr_group import CubeValidationError

log = logging.getLogger(__name__)

LAT_NAMES = ("lat", "latitude", "y")
LON_NAMES = ("lon", "longitude", "x")
TIME_NAMES = ("time", "t")


class ClimateIngestError(ValueError):
    """A NetCDF input cannot be ingested; the message names the file and the problem."""


@dataclass(frozen=True)
class NetcdfSource:
    """One NetCDF file: its variables (of those declared), months, and lon/lat grid."""

    url: str
    variables: tuple[str, ...]
    months: np.ndarray  # datetime64[M], strictly increasing
    grid: Grid  # EPSG:4326, north-up
    lat_ascending: bool
    names: tuple[str, str, str]  # time, lat, lon dimension names


@dataclass(frozen=True)
class ClimateIngestReport:
    """What one climate ingest run did."""

    cube_url: str
    files: int
    variables: tuple[str, ...]
    first_month: str
    last_month: str
    blocks_written: int
    blocks_skipped: int


@contextlib.contextmanager
def open_netcdf(url: str) -> Iterator[xr.Dataset]:
    """Open a NetCDF file (local or s3://) with CF decoding of values but raw time numbers."""
    loc = storage.resolve(url)
    with contextlib.ExitStack() as stack:
        try:
            if loc.is_s3:
                handle = stack.enter_context(storage.open_file(loc.url, "rb"))
                ds = xr.open_dataset(handle, engine="h5netcdf", decode_times=False)
            else:
                ds = xr.open_dataset(loc.path, decode_times=False)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, TypeError) as exc:
            raise ClimateIngestError(f"{loc.url}: not a readable NetCDF file ({exc})") from exc
        stack.enter_context(ds)
        yield ds


def _dim(ds: xr.Dataset, names: Sequence[str], what: str, url: str) -> str:
    for name in names:
        if name in ds.dims:
            return name
    raise ClimateIngestError(f"{url}: no {what} dimension (looked for {list(names)}; has {list(ds.dims)})")


def decode_months(ds: xr.Dataset, time: str, url: str) -> np.ndarray:
    """The file's months (datetime64[M]) from its CF time axis; errors name the file."""
    var = ds[time]
    units = var.attrs.get("units")
    if not units:
        raise ClimateIngestError(f"{url}: time axis {time!r} has no CF units (e.g. 'days since 1900-01-01')")
    try:
        decoded = xr.coding.times.decode_cf_datetime(
            np.asarray(var.values), units, var.attrs.get("calendar", "standard")
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise ClimateIngestError(f"{url}: time axis cannot be decoded (units {units!r}): {exc}") from exc
    decoded = np.atleast_1d(decoded)
    if decoded.dtype.kind == "M":
        months = decoded.astype("datetime64[M]")
    else:  # cftime objects (non-standard calendars)
        months = np.array([np.datetime64(f"{d.year:04d}-{d.month:02d}", "M") for d in decoded])
    steps = np.diff(months.astype(np.int64))
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise ClimateIngestError(
            f"{url}: time axis is not increasing by month ({months[i]} is followed by {months[i + 1]})"
        )
    return months


def _axis_grid(lat: np.ndarray, lon: np.ndarray, url: str) -> tuple[Grid, bool]:
    if lat.size < 2 or lon.size < 2:
        raise ClimateIngestError(f"{url}: need at least 2 latitudes and 2 longitudes")
    dlon, dlat = np.diff(lon), np.diff(lat)
    res = float(np.mean(np.abs(dlon)))
    if not (np.allclose(dlon, res, rtol=1e-4) and np.allclose(np.abs(dlat), res, rtol=1e-4)):
        raise ClimateIngestError(f"{url}: lon/lat axes are not a regular grid of square pixels")
    ascending = bool(dlat[0] > 0)
    north = float(lat.max()) + res / 2
    west = float(lon[0]) - res / 2
    return Grid.from_origin(4326, west, north, res, lon.size, lat.size), ascending


def scan_netcdf(url: str, variables: Sequence[str]) -> NetcdfSource:
    """Read a file's metadata: which declared variables it holds, its months and its grid."""
    with open_netcdf(url) as ds:
        time = _dim(ds, TIME_NAMES, "time", url)
        lat = _dim(ds, LAT_NAMES, "latitude", url)
        lon = _dim(ds, LON_NAMES, "longitude", url)
        found = tuple(v for v in variables if v in ds.data_vars)
        for v in found:
            if set(ds[v].dims) != {time, lat, lon}:
                raise ClimateIngestError(f"{url}: variable {v!r} has dims {ds[v].dims}, expected time, lat, lon")
        months = decode_months(ds, time, url)
        grid, ascending = _axis_grid(np.asarray(ds[lat].values), np.asarray(ds[lon].values), url)
    return NetcdfSource(url, found, months, grid, ascending, (time, lat, lon))


def _coverage(sources: Sequence[NetcdfSource], variables: Sequence[str]) -> dict[str, list[NetcdfSource]]:
    cover: dict[str, list[NetcdfSource]] = {}
    for v in variables:
        holders = sorted((s for s in sources if v in s.variables), key=lambda s: s.months[0])
        if not holders:
            have = sorted({x for s in sources for x in s.variables})
            raise ClimateIngestError(f"variable {v!r} is in none of the {len(sources)} files (declared found: {have})")
        for a, b in itertools.pairwise(holders):
            shared = np.intersect1d(a.months, b.months)
            if shared.size:
                raise ClimateIngestError(f"variable {v!r}: month {shared[0]} is in both {a.url} and {b.url}")
        cover[v] = holders
    return cover


def month_axis(cover: dict[str, list[NetcdfSource]], cfg: ClimateIngestConfig) -> np.ndarray:
    """The cube's months (first day of each); every variable must cover all of them, without gaps."""
    first = min(s.months[0] for h in cover.values() for s in h)
    last = max(s.months[-1] for h in cover.values() for s in h)
    if cfg.start is not None:
        first = max(first, np.datetime64(cfg.start, "M"))
    if cfg.end is not None:
        last = min(last, np.datetime64(cfg.end, "M"))
    if first > last:
        raise ClimateIngestError(f"no month of the files lies between {cfg.start} and {cfg.end}")
    months = np.arange(first, last + 1)
    for v, holders in cover.items():
        have = np.concatenate([s.months for s in holders])
        missing = np.setdiff1d(months, have)
        if missing.size:
            m = missing[0]
            before = [s.url for s in holders if s.months[-1] < m]
            after = [s.url for s in holders if s.months[0] > m]
            where = f"after {before[-1]}" if before else ""
            where += (" and " if before and after else "") + (f"before {after[0]}" if after else "")
            raise ClimateIngestError(f"variable {v!r}: month {m} missing ({where or 'no file holds it'})")
    check_monthly(months.astype("datetime64[D]"), "climate inputs")
    return months.astype("datetime64[D]")


def target_grid(source: Grid, cfg: ClimateIngestConfig) -> Grid:
    """The climate cube grid: the source grid (cropped to bounds) or a grid in another CRS."""
    if cfg.epsg is None:
        if cfg.bounds is None:
            return source
        w, s, e, n = cfg.bounds
        row, col = source.rowcol(np.array([w + 1e-9, e - 1e-9]), np.array([n - 1e-9, s + 1e-9]))
        r0, c0 = max(int(row[0]), 0), max(int(col[0]), 0)
        r1, c1 = min(int(row[1]) + 1, source.height), min(int(col[1]) + 1, source.width)
        if r1 <= r0 or c1 <= c0:
            raise ClimateIngestError(f"ingest.climate.bounds {cfg.bounds} do not overlap the source grid")
        return source.window(r0, c0, r1 - r0, c1 - c0)
    res = float(cfg.resolution)  # type: ignore[arg-type]
    w, s, e, n = cfg.bounds or transform_bounds(source.crs, f"EPSG:{cfg.epsg}", *source.bounds, densify_pts=21)
    west, north = math.floor(w / res) * res, math.ceil(n / res) * res
    width, height = math.ceil((e - west) / res), math.ceil((north - s) / res)
    return Grid.from_origin(cfg.epsg, west, north, res, width, height)


def _read(ds: xr.Dataset, src: NetcdfSource, var: str, tidx: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Decoded (time, h, w) float32 of a north-up pixel window of the source grid."""
    time, lat, lon = src.names
    if src.lat_ascending:
        h = src.grid.height
        rows = slice(h - rows.stop, h - rows.start)
    arr = ds[var].isel({time: tidx, lat: rows, lon: cols}).transpose(time, lat, lon).values
    arr = np.asarray(arr, dtype=np.float32)
    return arr[:, ::-1, :] if src.lat_ascending else arr


def _block(
    cover: dict[str, list[NetcdfSource]], months: np.ndarray, grid: Grid, block: Grid, cfg: ClimateIngestConfig
) -> np.ndarray:
    """(variable, time, h, w) float32 values of one block of the cube grid."""
    out = np.full((len(cover), len(months), block.height, block.width), np.nan, dtype=np.float32)
    first = months[0].astype("datetime64[M]")
    for vi, (var, holders) in enumerate(cover.items()):
        for src in holders:
            keep = (src.months >= first) & (src.months < first + len(months))
            if not keep.any():
                continue
            tidx = np.flatnonzero(keep)
            slots = (src.months[keep] - first).astype(np.int64)
            with open_netcdf(src.url) as ds:
                out[vi, slots] = _regrid(ds, src, var, tidx, block, cfg)
    return out


def _regrid(
    ds: xr.Dataset, src: NetcdfSource, var: str, tidx: np.ndarray, block: Grid, cfg: ClimateIngestConfig
) -> np.ndarray:
    sg = src.grid
    if block.epsg == sg.epsg and np.isclose(block.res, sg.res):
        row0 = round((block.transform[5] - sg.transform[5]) / sg.transform[4])
        col0 = round((block.transform[2] - sg.transform[2]) / sg.res)
        return _read(ds, src, var, tidx, slice(row0, row0 + block.height), slice(col0, col0 + block.width))
    w, s, e, n = transform_bounds(block.crs, sg.crs, *block.bounds, densify_pts=21)
    row, col = sg.rowcol(np.array([w, e]), np.array([n, s]))
    r0, c0 = max(int(row[0]) - 2, 0), max(int(col[0]) - 2, 0)
    r1, c1 = min(int(row[1]) + 3, sg.height), min(int(col[1]) + 3, sg.width)
    out = np.full((len(tidx), block.height, block.width), np.nan, dtype=np.float32)
    if r1 <= r0 or c1 <= c0:
        return out
    window = sg.window(r0, c0, r1 - r0, c1 - c0)
    reproject(
        _read(ds, src, var, tidx, slice(r0, r1), slice(c0, c1)),
        out,
        src_transform=window.affine,
        src_crs=sg.crs,
        src_nodata=np.nan,
        dst_transform=block.affine,
        dst_crs=block.crs,
        dst_nodata=np.nan,
        resampling=Resampling[cfg.resampling],
    )
    return out


def _block_side(n_vars: int, n_months: int, chunk: int, block_mb: float) -> int:
    per_pixel = n_vars * n_months * 4
    side = int(math.sqrt(block_mb * 2**20 / per_pixel)) // chunk * chunk
    return max(side, chunk)


def ingest_climate(
    urls: Sequence[str | os.PathLike[str]],
    cube_url: str | os.PathLike[str],
    cfg: ClimateIngestConfig | None = None,
    layout: ClimateLayout | None = None,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
    on_block: Callable[[str], None] | None = None,
) -> ClimateIngestReport:
    """Ingest NetCDF files into the climate cube at ``cube_url`` (resumable; refuses foreign cubes)."""
    cfg = cfg or ClimateIngestConfig()
    layout = layout or ClimateLayout()
    names = [os.fspath(u) for u in urls]
    if not names:
        raise ClimateIngestError("no NetCDF files given")
    sources = [scan_netcdf(u, cfg.variables) for u in names]
    sources = [s for s in sources if s.variables]
    if not sources:
        raise ClimateIngestError(f"none of the {len(names)} files holds any of the variables {cfg.variables}")
    ref = sources[0]
    for s in sources[1:]:
        if s.grid != ref.grid:
            raise ClimateIngestError(f"{s.url}: lon/lat grid differs from {ref.url} ({s.grid} vs {ref.grid})")
    cover = _coverage(sources, cfg.variables)
    months = month_axis(cover, cfg)
    grid = target_grid(ref.grid, cfg)
    side = _block_side(len(cfg.variables), len(months), layout.spatial_chunk, cfg.block_mb)
    fingerprint = {
        "kind": "climate",
        "block_side": side,
        "sources": names,
        "grid": grid.to_attrs(),
        "months": [str(months[0]), str(months[-1])],
        "settings": cfg.model_dump(mode="json", exclude={"block_mb"}),
    }
    cube, progress = _target(os.fspath(cube_url), grid, cfg, months, layout, attrs, fingerprint, overwrite)
    done = progress.done()
    blocks = [t for t in grid.tiles(side) if f"r{t[0]:07d}_c{t[1]:07d}" not in done]
    for row0, col0, height, width in blocks:
        key = f"r{row0:07d}_c{col0:07d}"
        values = _block(cover, months, grid, grid.window(row0, col0, height, width), cfg)
        write_climate_block(cube, row0, col0, values)
        progress.mark(key)
        if on_block is not None:
            on_block(key)
    progress.finish()
    total = sum(1 for _ in grid.tiles(side))
    return ClimateIngestReport(
        cube_url=cube.url,
        files=len(sources),
        variables=tuple(cfg.variables),
        first_month=str(months[0].astype("datetime64[M]")),
        last_month=str(months[-1].astype("datetime64[M]")),
        blocks_written=len(blocks),
        blocks_skipped=total - len(blocks),
    )


def _target(
    cube_url: str,
    grid: Grid,
    cfg: ClimateIngestConfig,
    months: np.ndarray,
    layout: ClimateLayout,
    attrs: dict[str, Any] | None,
    fingerprint: dict[str, Any],
    overwrite: bool,
) -> tuple[ClimateCube, IngestProgress]:
    exists = storage.exists(storage.join(cube_url, "zarr.json"))
    if exists and not overwrite:
        try:
            cube = None if half_created(cube_url, KIND) else open_climate_cube(cube_url, writable=True)
        except CubeValidationError as exc:
            raise ClimateIngestError(f"{cube_url}: exists but is not a climate cube ({exc})") from exc
        if cube is not None:
            return cube, IngestProgress.resume(cube.url, cube.group, fingerprint)
    cube = create_climate_cube(
        cube_url, grid, cfg.variables, months, layout, {"ingest_sources": fingerprint["sources"], **(attrs or {})},
        overwrite=exists,
    )  # fmt: skip
    return cube, IngestProgress.start(cube.url, cube.group, fingerprint)
