"""What a user would pick instead of soilnet's readers, written over the same pixels (benchmarks/streaming.py).

- torchgeo: one sparse, 512 px tiled BigTIFF (zstd 3, horizontal predictor, as a COG is written;
  only the tiles of written shards exist) read by `torchgeo.datasets.RasterDataset` with a sampler
  that yields the query of each point's window, as a labelled-point sampler would.
- reference SoilNet layout: one GeoTIFF per point holding its window plus one climate CSV per
  variable (a row per point, a column per month), read by our own loader of that pattern:
  the CSVs once, then ``rasterio.open(...).read()`` per sample.
- naive Zarr: one ``bands[:, r0:r1, c0:c1]`` read per window through zarr (`RasterCube.read_raw`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

from soilnet.data.raster_cube import RasterCube

#: GeoTIFF tile side of the torchgeo peer (what the issue's side-by-side used; also the cube's shard).
TIFF_TILE = 512
#: Window side of the reference layout's per-point GeoTIFFs.
REFERENCE_PATCH = 64


def write_tiled_geotiff(cube: RasterCube, shards: list[tuple[int, int]], path: Path) -> Path:
    """The cube's written shards as one sparse tiled BigTIFF on the cube's whole grid (absent tiles: nodata)."""
    grid, shard = cube.grid, cube.layout.shard
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": len(cube.band_names),
        "dtype": "int16",
        "crs": grid.crs,
        "transform": Affine(*grid.transform),
        "nodata": cube.nodata,
        "tiled": True,
        "blockxsize": TIFF_TILE,
        "blockysize": TIFF_TILE,
        "compress": "zstd",
        "zstd_level": 3,
        "predictor": 2,
        "interleave": "pixel",
        "sparse_ok": True,
        "bigtiff": "yes",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        for sr, sc in shards:
            r0, c0 = sr * shard, sc * shard
            h, w = min(shard, grid.height - r0), min(shard, grid.width - c0)
            dst.write(cube.read_raw(r0, c0, h, w), window=Window(c0, r0, w, h))
    return path


def torchgeo_dataset(folder: Path) -> object:
    """A `RasterDataset` over the GeoTIFFs in ``folder`` (all bands, raw int16 values as float32)."""
    from torchgeo.datasets import RasterDataset

    class CubeTiff(RasterDataset):
        filename_glob = "*.tif"
        is_image = True

    return CubeTiff(paths=str(folder))


def point_queries(cube: RasterCube, points: pd.DataFrame, size: int) -> Iterator[tuple[slice, slice]]:
    """torchgeo queries (x slice, y slice) of each point's ``size`` px window, as a point sampler yields them."""
    res = cube.grid.res
    for x, y in zip(points["x"].to_numpy(), points["y"].to_numpy(), strict=True):
        r0, c0 = cube.window_at(x, y, size)
        west, north = cube.grid.transform[2] + c0 * res, cube.grid.transform[5] - r0 * res
        yield slice(west, west + size * res, res), slice(north - size * res, north, res)


def tiles_touched(cube: RasterCube, points: pd.DataFrame, size: int) -> int:
    """GeoTIFF tiles (each decoded whole) that the points' windows touch, counted per window."""
    total = 0
    for x, y in zip(points["x"].to_numpy(), points["y"].to_numpy(), strict=True):
        r0, c0 = cube.window_at(x, y, size)
        rows = (r0 + size - 1) // TIFF_TILE - r0 // TIFF_TILE + 1
        cols = (c0 + size - 1) // TIFF_TILE - c0 // TIFF_TILE + 1
        total += rows * cols
    return total


def write_reference(
    cube: RasterCube, points: pd.DataFrame, climate: np.ndarray, variables: list[str], folder: Path
) -> None:
    """The reference layout: ``<id>.tif`` per point (its window, uncompressed) and ``<variable>.csv`` per variable."""
    folder.mkdir(parents=True, exist_ok=True)
    patch = REFERENCE_PATCH
    for pid, x, y in zip(points["id"], points["x"].to_numpy(), points["y"].to_numpy(), strict=True):
        r0, c0 = cube.window_at(x, y, patch)
        window = cube.read_raw(r0, c0, patch, patch)
        profile = {
            "driver": "GTiff",
            "width": patch,
            "height": patch,
            "count": window.shape[0],
            "dtype": "int16",
            "crs": cube.grid.crs,
            "transform": Affine(*cube.grid.window(r0, c0, patch, patch).transform),
            "nodata": cube.nodata,
        }
        with rasterio.open(folder / f"{pid}.tif", "w", **profile) as dst:
            dst.write(window)
    months = [f"m{i:02d}" for i in range(climate.shape[1])]
    for v, name in enumerate(variables):
        table = pd.DataFrame(climate[:, :, v], columns=months)
        table.insert(0, "id", points["id"].to_numpy())
        table.to_csv(folder / f"{name}.csv", index=False)


class ReferenceLoader:
    """Our loader of the reference layout: climate CSVs read once, then one GeoTIFF opened per sample."""

    def __init__(self, folder: Path, variables: list[str]) -> None:
        self.folder = folder
        tables = [pd.read_csv(folder / f"{v}.csv", index_col="id") for v in variables]
        ids = tables[0].index.astype(str)
        series = np.stack([t.to_numpy(np.float32) for t in tables], axis=-1)  # (point, month, variable)
        self.climate = dict(zip(ids, series, strict=True))

    def image(self, pid: str) -> np.ndarray:
        """(band, P, P) int16 window of one point."""
        with rasterio.open(self.folder / f"{pid}.tif") as src:
            return src.read()

    def sample(self, pid: str) -> tuple[np.ndarray, np.ndarray]:
        """Image window and (month, variable) climate series of one point."""
        return self.image(pid), self.climate[pid]
