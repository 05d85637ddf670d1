"""The point-window sample store: each labelled point's image window, one chunk per point, many per shard.

At LUCAS density almost every point lives in a raster-cube shard of its own, so the first epoch
over a points table costs a shard-index read and a range read per point, and a random 64 px
window decodes the 4 inner chunks it straddles (read amplification ~4). This store is written
once per points table (`write_point_store`, from the cube) and holds what training reads:

- ``image``: int16 (band, P, N * P): point i's window is columns ``i * P .. (i + 1) * P``; inner
  chunks are (band, P, P), one per point, ``points_per_shard`` of them in one shard object
  (blosc-zstd as the raster cube). Decoded amplification is exactly 1, and a batch costs one range
  request per shard it touches (`soilnet.data.shard_reader.ShardWindowReader` with coalescing).
- ``id``, ``x``, ``y`` per point; group attributes: ``soilnet_kind = "point_store"``, the bands,
  scale/offset, nodata, the source cube's URL and the patch size.

It is the reference SoilNet layout (one GeoTIFF per point) without the cost of one file per point.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import zarr.codecs

from soilnet import storage
from soilnet.data.raster_cube import RasterCube
from soilnet.data.shard_reader import ShardWindowReader
from soilnet.data.zarr_group import CubeValidationError, create_group, mark_complete, open_group, write_coord
from soilnet.progress import progress

log = logging.getLogger(__name__)

KIND = "point_store"
#: A batch's wanted chunks in one shard are fetched as one range when less than this apart.
COALESCE_BYTES = 64 << 20


def write_point_store(
    url: str | os.PathLike[str],
    cube: RasterCube,
    points: pd.DataFrame,
    patch_px: int = 64,
    points_per_shard: int = 256,
    overwrite: bool = False,
) -> str:
    """Cut every point's ``patch_px`` window (centred as `RasterCube.window_at`) from the cube into a new store.

    ``points`` needs ``id``, ``x``, ``y`` (cube CRS). Windows are read shard-aware
    (`ShardWindowReader`), ``points_per_shard`` at a time, and written one store shard per read.
    """
    meta = {
        "soilnet_kind": KIND,
        "source": cube.url,
        "patch_px": patch_px,
        "bands": list(cube.band_names),
        "scale": cube.scale.tolist(),
        "offset": cube.offset.tolist(),
        "nodata": cube.nodata,
    }
    group = create_group(url, meta, overwrite=overwrite)
    n, c = len(points), len(cube.band_names)
    image = group.create_array(
        "image",
        shape=(c, patch_px, n * patch_px),
        dtype="int16",
        chunks=(c, patch_px, patch_px),
        shards=(c, patch_px, points_per_shard * patch_px),
        fill_value=cube.nodata,
        compressors=[zarr.codecs.BloscCodec(cname="zstd", clevel=cube.layout.clevel, shuffle="bitshuffle")],
        dimension_names=("band", "y", "point_x"),
    )
    ids = np.array(points["id"].astype(str).tolist(), dtype=str)
    write_coord(group, "id", ids, ("point",), {"long_name": "point id"})
    write_coord(group, "x", points["x"].to_numpy(np.float64), ("point",), {"long_name": "x in the cube CRS"})
    write_coord(group, "y", points["y"].to_numpy(np.float64), ("point",), {"long_name": "y in the cube CRS"})
    reader = ShardWindowReader(cube.url, cube.bands, "bands", coalesce_bytes=COALESCE_BYTES)
    x, y = points["x"].to_numpy(np.float64), points["y"].to_numpy(np.float64)
    row, col = cube.grid.rowcol(x, y)
    half = patch_px // 2
    for start in progress(range(0, n, points_per_shard), "point store shards"):
        end = min(start + points_per_shard, n)
        windows = reader.read_windows(row[start:end] - half, col[start:end] - half, patch_px)
        mosaic = windows.transpose(1, 2, 0, 3).reshape(c, patch_px, (end - start) * patch_px)
        with storage.writing(f"{url}: cannot write points {start}:{end}"):
            image[:, :, start * patch_px : end * patch_px] = mosaic
    mark_complete(group)
    where = storage.resolve(url).url
    log.info("point store %s: %d points x %d bands x %d px", where, n, c, patch_px)
    return where


@dataclass
class PointStore:
    """An open point store: ids and coordinates in memory, windows read by point index."""

    url: str
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    patch_px: int
    bands: tuple[str, ...]
    scale: np.ndarray
    offset: np.ndarray
    nodata: int
    reader: ShardWindowReader

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, index: Sequence[int] | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(len(index), band, P, P) raw windows of the points at ``index`` (into ``out`` if given), decoded
        straight into the output; one request per shard touched."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"{self.url}: point index out of range 0..{len(self) - 1}")
        return self.reader.read_windows(np.zeros_like(index), index * self.patch_px, self.patch_px, out)

    def read_all(self) -> np.ndarray:
        """Every point's window in store order (the first epoch's fill of a cache), one request per store shard."""
        out = np.empty((len(self), len(self.bands), self.patch_px, self.patch_px), dtype=np.int16)
        per_shard = self.reader.layout.shard[1] // self.patch_px
        for start in range(0, len(self), per_shard):
            end = min(start + per_shard, len(self))
            self.read(np.arange(start, end), out[start:end])
        return out


def open_point_store(url: str | os.PathLike[str], threads: int = 16) -> PointStore:
    """Open a point store written by `write_point_store`; errors name the store."""
    group, meta = open_group(url, KIND)
    where = storage.resolve(url).url
    for name in ("image", "id", "x", "y"):
        if name not in group:
            raise CubeValidationError(f"{where}: variable {name!r} missing")
    patch = int(meta["patch_px"])
    ids = np.array([str(v) for v in group["id"][:]])
    if group["image"].shape[2] != len(ids) * patch:
        raise CubeValidationError(f"{where}: 'image' holds {group['image'].shape[2] // patch} windows, {len(ids)} ids")
    return PointStore(
        url=where,
        ids=ids,
        x=np.asarray(group["x"][:], dtype=np.float64),
        y=np.asarray(group["y"][:], dtype=np.float64),
        patch_px=patch,
        bands=tuple(meta["bands"]),
        scale=np.asarray(meta["scale"], dtype=np.float64),
        offset=np.asarray(meta["offset"], dtype=np.float64),
        nodata=int(meta["nodata"]),
        reader=ShardWindowReader(where, group["image"], "image", threads, coalesce_bytes=COALESCE_BYTES),
    )
