"""The raster cube contract: a Zarr v3 group with ``bands`` (band, y, x) as scaled int16.

Layout (readable by plain ``xarray.open_zarr`` and rioxarray):

- ``bands``: int16 (band, y, x), sharded: inner chunks of ``inner_chunk`` px (every band in
  one chunk, so a training window is a few small range reads) inside shards of ``shard`` px
  (a mapping tile is one object). ``fill_value`` is the nodata value.
- ``band`` (names), ``x`` / ``y`` (pixel centres), ``scale`` / ``offset`` per band
  (value = raw * scale + offset), ``spatial_ref`` (CF grid mapping with ``crs_wkt`` and
  ``GeoTransform``).
- optional ``landcover``: uint8 (y, x), ESA WorldCover classes, same chunking.
- group attributes: ``soilnet_kind = "raster_cube"``, ``grid`` (EPSG, transform, size),
  ``nodata``, ``layout``, free-form ``attrs`` (e.g. the generator's parameters), and
  ``complete`` (False until the writer's `RasterCubeWriter.finish`; read-only opens refuse it).
- ``bands/_digests.npy``: a content digest of every written shard of ``bands``, recorded by the
  writer and read by the map job's change detection in one request (`soilnet.data.shard_digests`).
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
from pydantic import Field, model_validator

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.data.bands import band_spec
from soilnet.data.grid import Grid
from soilnet.data.shard_digests import DigestRecorder, consolidate_cube, grid_of
from soilnet.data.zarr_group import (
    CubeExistsError,
    CubeValidationError,
    create_group,
    crs_attrs,
    mark_complete,
    open_group,
    write_coord,
)

log = logging.getLogger(__name__)

KIND = "raster_cube"
NODATA = -32768
LANDCOVER_NODATA = 0


class RasterLayout(StrictModel):
    """How a raster cube is chunked on storage."""

    inner_chunk: int = Field(64, ge=8, le=1024, description="Inner chunk side in pixels (training reads).")
    shard: int = Field(512, ge=8, le=8192, description="Shard side in pixels (one object; mapping tiles).")
    clevel: int = Field(3, ge=0, le=9, description="zstd compression level of the chunks.")

    @model_validator(mode="after")
    def _shard_multiple(self) -> RasterLayout:
        if self.shard % self.inner_chunk:
            raise ValueError(f"shard ({self.shard}) must be a multiple of inner_chunk ({self.inner_chunk})")
        return self


def encode(values: np.ndarray, scale: np.ndarray, offset: np.ndarray, nodata: int = NODATA) -> np.ndarray:
    """Encode float (C, ...) values to int16 with per-band scale/offset; NaN becomes nodata."""
    shape = (-1,) + (1,) * (values.ndim - 1)
    raw = (values - offset.reshape(shape)) / scale.reshape(shape)
    info = np.iinfo(np.int16)
    raw = np.clip(np.rint(raw), info.min + 1, info.max)
    out = np.where(np.isnan(values), nodata, raw)
    return out.astype(np.int16)


def decode(raw: np.ndarray, scale: np.ndarray, offset: np.ndarray, nodata: int = NODATA) -> np.ndarray:
    """Decode int16 (C, ...) to float32 values; nodata becomes NaN."""
    shape = (-1,) + (1,) * (raw.ndim - 1)
    values = raw.astype(np.float32) * scale.reshape(shape).astype(np.float32) + offset.reshape(shape).astype(np.float32)
    values[raw == nodata] = np.nan
    return values


@dataclass
class RasterCube:
    """An open raster cube: metadata in memory, pixels read lazily by window."""

    url: str
    group: zarr.Group
    grid: Grid
    band_names: tuple[str, ...]
    scale: np.ndarray
    offset: np.ndarray
    nodata: int
    layout: RasterLayout
    attrs: dict[str, Any]

    @property
    def bands(self) -> zarr.Array:
        """The (band, y, x) int16 array."""
        return self.group["bands"]  # type: ignore[return-value]

    @property
    def has_landcover(self) -> bool:
        """True if the cube carries a land-cover layer."""
        return "landcover" in self.group

    def band_index(self, names: Sequence[str]) -> list[int]:
        """Indices of the named bands; a clear error names any band the cube lacks."""
        missing = [n for n in names if n not in self.band_names]
        if missing:
            raise CubeValidationError(f"{self.url}: bands {missing} missing (cube has {list(self.band_names)})")
        return [self.band_names.index(n) for n in names]

    def read_raw(self, row0: int, col0: int, height: int, width: int, variable: str = "bands") -> np.ndarray:
        """Raw stored values of a pixel window; parts outside the grid are filled with nodata."""
        arr = self.group[variable]
        fill = self.nodata if variable == "bands" else LANDCOVER_NODATA
        lead = arr.shape[:-2]
        out = np.full((*lead, height, width), fill, dtype=arr.dtype)
        r0, c0 = max(row0, 0), max(col0, 0)
        r1, c1 = min(row0 + height, self.grid.height), min(col0 + width, self.grid.width)
        if r0 < r1 and c0 < c1:
            try:
                out[..., r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = arr[..., r0:r1, c0:c1]
            except storage.unreachable_errors():
                raise
            except Exception as exc:  # a codec or shard-index failure: name the objects involved
                raise CubeValidationError(
                    f"{self.url}: cannot decode {variable!r} at rows {r0}:{r1}, cols {c0}:{c1}; "
                    f"corrupt chunk in shard(s) {self._shard_keys(variable, r0, r1, c0, c1)}: {exc}"
                ) from exc
        return out

    def _shard_keys(self, variable: str, r0: int, r1: int, c0: int, c1: int) -> list[str]:
        """Storage keys of the shards a pixel window touches (zarr v3 default ``c/...`` keys)."""
        shard = self.layout.shard
        lead = "0/" if variable == "bands" else ""
        return [
            f"{variable}/c/{lead}{r}/{c}"
            for r in range(r0 // shard, (r1 - 1) // shard + 1)
            for c in range(c0 // shard, (c1 - 1) // shard + 1)
        ]

    def read_window(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """Decoded float32 (band, height, width) window; nodata and outside-grid pixels are NaN."""
        return decode(self.read_raw(row0, col0, height, width), self.scale, self.offset, self.nodata)

    def window_at(self, x: float, y: float, size: int) -> tuple[int, int]:
        """(row0, col0) of the ``size`` px window centred on map coordinates (x, y)."""
        row, col = self.grid.rowcol(x, y)
        return int(row) - size // 2, int(col) - size // 2

    def read_window_at(self, x: float, y: float, size: int) -> np.ndarray:
        """Decoded (band, size, size) window centred on map coordinates (x, y)."""
        row0, col0 = self.window_at(x, y, size)
        return self.read_window(row0, col0, size, size)


class RasterCubeWriter:
    """Writes shard-aligned tiles of float values into a newly created raster cube."""

    def __init__(self, cube: RasterCube) -> None:
        self.cube = cube
        self.digests = DigestRecorder(cube.url, "bands", grid_of(cube.bands))

    def _check_aligned(self, row0: int, col0: int, height: int, width: int) -> None:
        shard, grid = self.cube.layout.shard, self.cube.grid
        end_ok = lambda start, size, total: (start + size) % shard == 0 or start + size == total  # noqa: E731
        if row0 % shard or col0 % shard or not end_ok(row0, height, grid.height) or not end_ok(col0, width, grid.width):
            raise ValueError(
                f"{self.cube.url}: tile ({row0}, {col0}, {height}, {width}) is not aligned to the "
                f"{shard} px shard grid; writers must own whole shards"
            )

    def write_tile(self, row0: int, col0: int, values: np.ndarray, landcover: np.ndarray | None = None) -> None:
        """Encode and write float32 (band, h, w) values (NaN = nodata) at a shard-aligned offset."""
        c, h, w = values.shape
        if c != len(self.cube.band_names):
            raise ValueError(f"{self.cube.url}: tile has {c} bands, cube has {len(self.cube.band_names)}")
        self._check_aligned(row0, col0, h, w)
        if landcover is not None and not self.cube.has_landcover:
            raise ValueError(f"{self.cube.url}: cube was created without a landcover layer")
        raw = encode(values, self.cube.scale, self.cube.offset, self.cube.nodata)
        with storage.writing(
            f"{self.cube.url}: cannot write the shard at rows {row0}:{row0 + h}, cols {col0}:{col0 + w}"
        ):
            self.cube.group["bands"][:, row0 : row0 + h, col0 : col0 + w] = raw
            self.digests.record(row0, col0, raw)
            if landcover is not None:
                self.cube.group["landcover"][row0 : row0 + h, col0 : col0 + w] = landcover.astype(np.uint8)

    def finish(self) -> None:
        """Mark the cube complete: call once every tile is written (until then read-only opens refuse it)."""
        with storage.writing(f"{self.cube.url}: cannot mark the cube complete"):
            consolidate_cube(self.cube.url, self.cube.group, [self.digests])
            mark_complete(self.cube.group)
        log.info("raster cube %s complete", self.cube.url)


def _compressors(layout: RasterLayout) -> list[Any]:
    return [zarr.codecs.BloscCodec(cname="zstd", clevel=layout.clevel, shuffle="bitshuffle")]


def create_raster_cube(
    url: str | os.PathLike[str],
    grid: Grid,
    band_names: Sequence[str],
    layout: RasterLayout | None = None,
    attrs: Mapping[str, Any] | None = None,
    landcover: bool = False,
    overwrite: bool = False,
) -> RasterCubeWriter:
    """Create an empty raster cube (all nodata), marked incomplete, and return a writer for its tiles.

    Call the writer's `RasterCubeWriter.finish` once every tile is written.
    """
    layout = layout or RasterLayout()
    names = list(band_names)
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate band names: {names}")
    specs = [band_spec(n) for n in names]
    scale = np.array([s.scale for s in specs], dtype=np.float64)
    offset = np.array([s.offset for s in specs], dtype=np.float64)
    meta = {
        "soilnet_kind": KIND,
        "grid": grid.to_attrs(),
        "nodata": NODATA,
        "layout": layout.model_dump(),
        "attrs": dict(attrs or {}),
    }
    group = create_group(url, meta, overwrite=overwrite)
    inner, shard = layout.inner_chunk, layout.shard
    group.create_array(
        "bands",
        shape=(len(names), grid.height, grid.width),
        dtype="int16",
        chunks=(len(names), inner, inner),
        shards=(len(names), shard, shard),
        fill_value=NODATA,
        compressors=_compressors(layout),
        dimension_names=("band", "y", "x"),
        attributes={
            "grid_mapping": "spatial_ref",
            "coordinates": "scale offset spatial_ref",
            "_FillValue": NODATA,
            "long_name": "scaled integer band values (value = raw * scale + offset)",
        },
    )
    if landcover:
        group.create_array(
            "landcover",
            shape=(grid.height, grid.width),
            dtype="uint8",
            chunks=(inner, inner),
            shards=(shard, shard),
            fill_value=LANDCOVER_NODATA,
            compressors=_compressors(layout),
            dimension_names=("y", "x"),
            attributes={"grid_mapping": "spatial_ref", "_FillValue": LANDCOVER_NODATA, "long_name": "ESA WorldCover"},
        )
    write_coord(group, "band", np.array(names, dtype=str), ("band",), {"long_name": "band name"})
    write_coord(group, "scale", scale, ("band",), {"long_name": "per-band scale factor"})
    write_coord(group, "offset", offset, ("band",), {"long_name": "per-band offset"})
    write_coord(group, "x", grid.x_coords(), ("x",), {"standard_name": "projection_x_coordinate", "units": "m"})
    write_coord(group, "y", grid.y_coords(), ("y",), {"standard_name": "projection_y_coordinate", "units": "m"})
    write_coord(group, "spatial_ref", np.array(0, dtype=np.int32), (), crs_attrs(grid))
    log.info(
        "created raster cube %s: %d bands, %d x %d px", storage.resolve(url).url, len(names), grid.width, grid.height
    )
    return RasterCubeWriter(open_raster_cube(url, writable=True))


def open_raster_cube(url: str | os.PathLike[str], writable: bool = False) -> RasterCube:
    """Open and validate a raster cube; errors name the store and what is wrong."""
    group, meta = open_group(url, KIND, writable=writable)
    where = storage.resolve(url).url
    if "bands" not in group:
        raise CubeValidationError(f"{where}: variable 'bands' missing")
    bands = group["bands"]
    try:
        grid = Grid.from_attrs(meta["grid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CubeValidationError(f"{where}: group attribute 'grid' (EPSG, transform, size) invalid: {exc}") from exc
    dims = tuple(bands.metadata.dimension_names or ())
    if dims != ("band", "y", "x"):
        raise CubeValidationError(f"{where}: variable 'bands' has dims {dims}, expected ('band', 'y', 'x')")
    if bands.dtype != np.int16:
        raise CubeValidationError(f"{where}: variable 'bands' has dtype {bands.dtype}, expected int16")
    if bands.shape[1:] != (grid.height, grid.width):
        raise CubeValidationError(
            f"{where}: variable 'bands' is {bands.shape[1:]} px but the grid is {(grid.height, grid.width)}"
        )
    for name in ("band", "scale", "offset"):
        if name not in group or group[name].shape != (bands.shape[0],):
            raise CubeValidationError(f"{where}: coordinate {name!r} missing or not one value per band")
    if "nodata" not in meta:
        raise CubeValidationError(f"{where}: no nodata value declared")
    names = tuple(str(v) for v in group["band"][:])
    return RasterCube(
        url=where,
        group=group,
        grid=grid,
        band_names=names,
        scale=np.asarray(group["scale"][:], dtype=np.float64),
        offset=np.asarray(group["offset"][:], dtype=np.float64),
        nodata=int(meta["nodata"]),
        layout=RasterLayout(**meta.get("layout", {})),
        attrs=dict(meta.get("attrs", {})),
    )


def validate_raster_cube(
    url: str | os.PathLike[str], required_bands: Sequence[str] = (), epsg: int | None = None
) -> RasterCube:
    """Open a raster cube and check the bands and CRS a job needs."""
    cube = open_raster_cube(url)
    cube.band_index(required_bands)
    if epsg is not None and cube.grid.epsg != epsg:
        raise CubeValidationError(f"{cube.url}: CRS is EPSG:{cube.grid.epsg}, expected EPSG:{epsg}")
    return cube


__all__ = [
    "CubeExistsError",
    "CubeValidationError",
    "RasterCube",
    "RasterCubeWriter",
    "RasterLayout",
    "create_raster_cube",
    "decode",
    "encode",
    "open_raster_cube",
    "validate_raster_cube",
]
