"""The climate cube contract: monthly (variable, time, y, x) float32 on its own coarse grid.

Chunked as (all variables, all months, ``spatial_chunk``, ``spatial_chunk``) so that one
location's whole series is one read. Time is stored as CF ``days since 1970-01-01`` at the
first day of each month, checked to be monthly without gaps. Missing values are NaN; true
zeros (snow water equivalent, runoff, deficit) stay zeros. The group attribute ``complete`` is
False until `finish_climate_cube` (read-only opens refuse the cube until then).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
import zarr.codecs
from pydantic import Field
from pyproj import Transformer

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.data.bands import CLIMATE_VARIABLES
from soilnet.data.grid import Grid
from soilnet.data.shard_digests import DigestRecorder, consolidate_cube, grid_of
from soilnet.data.zarr_group import CubeValidationError, create_group, crs_attrs, mark_complete, open_group, write_coord

log = logging.getLogger(__name__)

KIND = "climate_cube"
EPOCH = np.datetime64("1970-01-01", "D")


class ClimateLayout(StrictModel):
    """How a climate cube is chunked on storage."""

    spatial_chunk: int = Field(16, ge=1, le=512, description="Chunk side in climate pixels (whole series inside).")


def month_starts(first: str | np.datetime64, count: int) -> np.ndarray:
    """``count`` consecutive month starts beginning at the month of ``first``."""
    start = np.datetime64(first, "M")
    return (start + np.arange(count)).astype("datetime64[D]")


def check_monthly(times: np.ndarray, where: str) -> None:
    """Raise if ``times`` are not consecutive month starts."""
    times = np.asarray(times).astype("datetime64[D]")
    months = times.astype("datetime64[M]")
    if np.any(months.astype("datetime64[D]") != times):
        bad = times[months.astype("datetime64[D]") != times][0]
        raise CubeValidationError(f"{where}: time {bad} is not the first day of a month (time not monthly)")
    steps = np.diff(months.astype(np.int64))
    if np.any(steps != 1):
        i = int(np.argmax(steps != 1))
        raise CubeValidationError(f"{where}: time not monthly: {months[i]} is followed by {months[i + 1]} (gap)")


@dataclass
class ClimateCube:
    """An open climate cube."""

    url: str
    group: zarr.Group
    grid: Grid
    variables: tuple[str, ...]
    times: np.ndarray
    attrs: dict[str, Any]

    @property
    def data(self) -> zarr.Array:
        """The (variable, time, y, x) float32 array."""
        return self.group["climate"]  # type: ignore[return-value]

    def month_index(self, end: np.ndarray | str, months: int) -> np.ndarray:
        """Index of the first of ``months`` months ending at (and including) the month of ``end``."""
        end_m = np.asarray(end).astype("datetime64[M]")
        first = self.times[0].astype("datetime64[M]")
        start = (end_m - first).astype(np.int64) - (months - 1)
        last = len(self.times) - months
        bad = (start < 0) | (start > last)
        if np.any(bad):
            b = np.atleast_1d(end_m)[np.atleast_1d(bad)][0]
            raise ValueError(
                f"{self.url}: {months} months ending {b} are not inside the cube's time axis "
                f"{self.times[0]} .. {self.times[-1]}"
            )
        return start

    def pixels_of(self, x: np.ndarray, y: np.ndarray, epsg: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the climate pixels holding points given in another CRS."""
        if epsg != self.grid.epsg:
            tr = Transformer.from_crs(epsg, self.grid.epsg, always_xy=True)
            x, y = tr.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        row, col = self.grid.rowcol(x, y)
        outside = (row < 0) | (row >= self.grid.height) | (col < 0) | (col >= self.grid.width)
        if np.any(outside):
            i = int(np.argmax(np.atleast_1d(outside)))
            raise ValueError(
                f"{self.url}: point ({np.atleast_1d(x)[i]:.1f}, {np.atleast_1d(y)[i]:.1f}) in EPSG:{self.grid.epsg} "
                "is outside the climate grid"
            )
        return row, col

    def read_series(self, x: np.ndarray, y: np.ndarray, epsg: int, end: np.ndarray | str, months: int) -> np.ndarray:
        """(N, months, variable) float32 series ending at each point's month, nearest climate pixel.

        Points are grouped by climate chunk so each chunk (whole series of a block) is read once.
        """
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        row, col = self.pixels_of(x, y, epsg)
        start = np.broadcast_to(self.month_index(end, months), row.shape)
        out = np.empty((len(row), months, len(self.variables)), dtype=np.float32)
        chunk = self.data.chunks[2]
        keys = (row // chunk) * (self.grid.width // chunk + 1) + col // chunk
        for key in np.unique(keys):
            sel = np.flatnonzero(keys == key)
            r0, c0 = int(row[sel[0]] // chunk * chunk), int(col[sel[0]] // chunk * chunk)
            block = self.data[:, :, r0 : r0 + chunk, c0 : c0 + chunk]
            for i in sel:
                s = int(start[i])
                out[i] = block[:, s : s + months, row[i] - r0, col[i] - c0].T
        return out


def create_climate_cube(
    url: str | os.PathLike[str],
    grid: Grid,
    variables: Sequence[str],
    times: np.ndarray,
    layout: ClimateLayout | None = None,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> ClimateCube:
    """Create an empty climate cube (all NaN), marked incomplete; fill it with `write_climate_block`, then
    call `finish_climate_cube`."""
    layout = layout or ClimateLayout()
    where = storage.resolve(url).url
    times = np.asarray(times).astype("datetime64[D]")
    check_monthly(times, where)
    meta = {"soilnet_kind": KIND, "grid": grid.to_attrs(), "layout": layout.model_dump(), "attrs": dict(attrs or {})}
    group = create_group(url, meta, overwrite=overwrite)
    c = layout.spatial_chunk
    group.create_array(
        "climate",
        shape=(len(variables), len(times), grid.height, grid.width),
        dtype="float32",
        chunks=(len(variables), len(times), c, c),
        fill_value=np.nan,
        compressors=[zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
        dimension_names=("variable", "time", "y", "x"),
        attributes={
            "grid_mapping": "spatial_ref",
            "coordinates": "spatial_ref",
            "units_by_variable": {v: CLIMATE_VARIABLES.get(v, "") for v in variables},
        },
    )
    write_coord(group, "variable", np.array(list(variables), dtype=str), ("variable",), {"long_name": "variable"})
    write_coord(
        group,
        "time",
        (times - EPOCH).astype(np.int64),
        ("time",),
        {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "standard_name": "time"},
    )
    write_coord(group, "x", grid.x_coords(), ("x",), {"standard_name": "projection_x_coordinate"})
    write_coord(group, "y", grid.y_coords(), ("y",), {"standard_name": "projection_y_coordinate"})
    write_coord(group, "spatial_ref", np.array(0, dtype=np.int32), (), crs_attrs(grid))
    log.info(
        "created climate cube %s: %d variables x %d months, %d x %d px",
        where,
        len(variables),
        len(times),
        grid.width,
        grid.height,
    )
    return open_climate_cube(url, writable=True)


def write_climate_block(cube: ClimateCube, row0: int, col0: int, values: np.ndarray) -> None:
    """Write (variable, time, h, w) float32 values at a pixel offset."""
    v, t, h, w = values.shape
    if (v, t) != cube.data.shape[:2]:
        raise ValueError(f"{cube.url}: block is {v} variables x {t} months, cube is {cube.data.shape[:2]}")
    with storage.writing(f"{cube.url}: cannot write the block at rows {row0}:{row0 + h}, cols {col0}:{col0 + w}"):
        stored = values.astype(np.float32)
        cube.data[:, :, row0 : row0 + h, col0 : col0 + w] = stored
        DigestRecorder(cube.url, "climate", grid_of(cube.data)).record(row0, col0, stored)


def finish_climate_cube(cube: ClimateCube) -> None:
    """Mark a climate cube complete: call once every block is written (until then read-only opens refuse it)."""
    with storage.writing(f"{cube.url}: cannot mark the cube complete"):
        consolidate_cube(cube.url, cube.group)
        mark_complete(cube.group)
    log.info("climate cube %s complete", cube.url)


def open_climate_cube(url: str | os.PathLike[str], writable: bool = False) -> ClimateCube:
    """Open and validate a climate cube; errors name the store and what is wrong."""
    group, meta = open_group(url, KIND, writable=writable)
    where = storage.resolve(url).url
    if "climate" not in group:
        raise CubeValidationError(f"{where}: variable 'climate' missing")
    data = group["climate"]
    dims = tuple(data.metadata.dimension_names or ())
    if dims != ("variable", "time", "y", "x"):
        raise CubeValidationError(
            f"{where}: variable 'climate' has dims {dims}, expected ('variable', 'time', 'y', 'x')"
        )
    if data.dtype != np.float32:
        raise CubeValidationError(f"{where}: variable 'climate' has dtype {data.dtype}, expected float32")
    try:
        grid = Grid.from_attrs(meta["grid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CubeValidationError(f"{where}: group attribute 'grid' (EPSG, transform, size) invalid: {exc}") from exc
    if data.shape[2:] != (grid.height, grid.width):
        raise CubeValidationError(
            f"{where}: 'climate' is {data.shape[2:]} px but the grid is {(grid.height, grid.width)}"
        )
    times = EPOCH + np.asarray(group["time"][:], dtype=np.int64).astype("timedelta64[D]")
    check_monthly(times, where)
    variables = tuple(str(v) for v in group["variable"][:])
    if len(variables) != data.shape[0] or len(times) != data.shape[1]:
        raise CubeValidationError(f"{where}: coordinates 'variable'/'time' do not match 'climate' {data.shape}")
    return ClimateCube(where, group, grid, variables, times, dict(meta.get("attrs", {})))


def validate_climate_cube(
    url: str | os.PathLike[str], required: Sequence[str] = (), min_months: int = 1
) -> ClimateCube:
    """Open a climate cube and check the variables and series length a job needs."""
    cube = open_climate_cube(url)
    missing = [v for v in required if v not in cube.variables]
    if missing:
        raise CubeValidationError(f"{cube.url}: climate variables {missing} missing (cube has {list(cube.variables)})")
    if len(cube.times) < min_months:
        raise CubeValidationError(f"{cube.url}: {len(cube.times)} months, at least {min_months} needed")
    return cube
