"""Planning a map: tiles over the region, area, bytes to read, FLOPs and time on N GPUs.

FLOPs are counted (``torch.utils.flop_counter.FlopCounterMode``) by predicting one small
``k x k`` output-pixel tile exactly as the map job does, and divided by ``k * k``; time on N
GPUs assumes a stated share of a GPU's peak (`MapConfig.gpu_peak_fraction`); `soilnet.mapping.projection`
adds the measured read, write and tile rates.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer
from rasterio.features import rasterize
from torch.utils.flop_counter import FlopCounterMode

from soilnet.data.climate_cube import ClimateCube
from soilnet.data.grid import Grid
from soilnet.data.raster_cube import RasterCube
from soilnet.data.region import Region, Tile
from soilnet.mapping.ensemble import Ensemble, Mode
from soilnet.mapping.tiling import MapGrid

log = logging.getLogger(__name__)

#: Output pixels per side of the tile whose FLOPs are counted.
FLOP_TILE = 4


def flops_per_pixel(model: Ensemble, stride: int, mode: Mode, k: int = FLOP_TILE) -> float:
    """FLOPs the ensemble spends per output pixel (all folds), measured on a ``k x k`` pixel tile."""
    side = (k - 1) * stride + model.patch
    image = np.zeros((len(model.bands), side, side), dtype=np.float32)
    series = np.zeros((1, model.months, len(model.variables)), dtype=np.float32)
    index = np.zeros((k, k), dtype=np.int32)
    with FlopCounterMode(display=False) as counter:
        model.predict_tile(image, series, index, stride, mode, batch_size=k * k)
    return counter.get_total_flops() / (k * k)


#: Most cells of the coarse raster on which the region's area is counted (bounded memory at any size).
AREA_CELLS = 4096 * 4096


def region_pixels(out: Grid, shapes: list[dict[str, Any]] | None) -> int:
    """Output pixels inside the region: exact (pixel centres) up to ``AREA_CELLS`` pixels, else counted on
    square blocks of ``k x k`` pixels (``k`` the smallest that fits), which is off only along the border."""
    if shapes is None:
        return out.width * out.height
    k = max(1, math.ceil(math.sqrt(out.width * out.height / AREA_CELLS)))
    a, _, c, _, e, f = out.transform
    coarse = Grid(out.epsg, (a * k, 0.0, c, 0.0, e * k, f), math.ceil(out.width / k), math.ceil(out.height / k))
    inside = rasterize([(p, 1) for p in shapes], (coarse.height, coarse.width), transform=coarse.affine, dtype="uint8")
    return min(int(inside.sum()) * k * k, out.width * out.height)


def _tile_arrays(tiles: list[Tile]) -> np.ndarray:
    return np.array([(t.row0, t.col0, t.height, t.width) for t in tiles], dtype=np.int64).reshape(-1, 4)


def input_pixels(grid: MapGrid, tiles: np.ndarray, rows: int, cols: int) -> int:
    """Input pixels the tiles' windows read (halo included, clipped to the ``rows x cols`` input grid)."""
    s, p = grid.stride, grid.patch
    r0, c0 = tiles[:, 0] * s + grid.offset, tiles[:, 1] * s + grid.offset
    r1, c1 = r0 + (tiles[:, 2] - 1) * s + p, c0 + (tiles[:, 3] - 1) * s + p
    h = np.clip(np.minimum(r1, rows) - np.maximum(r0, 0), 0, None)
    w = np.clip(np.minimum(c1, cols) - np.maximum(c0, 0), 0, None)
    return int((h * w).sum())


def climate_cells(grid: MapGrid, tiles: np.ndarray, climate: ClimateCube) -> int:
    """Climate pixels under the tiles' bounding boxes (an estimate of the series they read)."""
    a, _, c, _, e, f = grid.output.transform
    west, east = c + a * tiles[:, 1], c + a * (tiles[:, 1] + tiles[:, 3])
    north, south = f + e * tiles[:, 0], f + e * (tiles[:, 0] + tiles[:, 2])
    tr = Transformer.from_crs(grid.output.epsg, climate.grid.epsg, always_xy=True)
    x, y = tr.transform(np.stack([west, east, west, east]), np.stack([south, south, north, north]))
    rows, cols = climate.grid.rowcol(x, y)
    return int(((rows.max(axis=0) - rows.min(axis=0) + 1) * (cols.max(axis=0) - cols.min(axis=0) + 1)).sum())


@dataclass
class MapPlan:
    """What a map job will do and what it will cost."""

    grid: MapGrid
    tiles: list[Tile]
    region_px: int
    input_bytes: int
    climate_bytes: int
    flops_per_pixel: float
    mode: Mode
    gpu_tflops: float

    @property
    def area_km2(self) -> float:
        """Area of the output pixels inside the region, km2."""
        return self.region_px * self.grid.output.res**2 / 1e6

    @property
    def output_px(self) -> int:
        """Output pixels predicted (whole tiles, inside or outside the region)."""
        return sum(t.height * t.width for t in self.tiles)

    @property
    def total_flops(self) -> float:
        """FLOPs of the whole map."""
        return self.flops_per_pixel * self.output_px

    def hours_on(self, n_gpus: int) -> float:
        """Estimated hours on ``n_gpus`` GPUs at the assumed sustained throughput."""
        return self.total_flops / (self.gpu_tflops * 1e12 * n_gpus) / 3600

    def facts(self, n_gpus: int) -> dict[str, str]:
        """The plan as labelled, human-readable values."""
        out = self.grid.output
        return {
            "output grid": f"{out.width} x {out.height} px at {out.res:g} m, {out.crs}",
            "stride / patch / halo": f"{self.grid.stride} / {self.grid.patch} / {self.grid.halo} input px",
            "tiles": f"{len(self.tiles)} of {self.grid.tile_px} px",
            "area in region": f"{self.area_km2:,.1f} km2",
            "input bytes to read": f"{self.input_bytes / 1e9:.3f} GB image + {self.climate_bytes / 1e9:.3f} GB climate",
            "FLOPs": f"{self.total_flops:.3e} ({self.flops_per_pixel:.3e} per pixel, {self.mode} mode)",
            f"GPU time on {n_gpus} GPU(s)": f"{self.hours_on(n_gpus):.3f} h at an ASSUMED {self.gpu_tflops:g} "
            "TFLOP/s each (gpu_peak_tflops x gpu_peak_fraction)",
        }


def make_plan(
    grid: MapGrid,
    region: Region | None,
    raster: RasterCube,
    climate: ClimateCube,
    model: Ensemble,
    mode: Mode,
    gpu_tflops: float,
) -> MapPlan:
    """Tiles over the region and the cost of mapping them."""
    tiles = grid.tiles(region)
    shapes = region.projected(grid.output.epsg) if region is not None else None
    if not tiles:
        raise ValueError(f"the region {region.source if region else ''} does not overlap the raster cube {raster.url}")
    arrays = _tile_arrays(tiles)
    band_bytes = raster.bands.shape[0] * raster.bands.dtype.itemsize
    series_bytes = len(climate.variables) * len(climate.times) * 4
    region_px = region_pixels(grid.output, shapes)
    image_bytes = band_bytes * input_pixels(grid, arrays, raster.grid.height, raster.grid.width)
    climate_bytes = series_bytes * climate_cells(grid, arrays, climate)
    return MapPlan(
        grid=grid,
        tiles=tiles,
        region_px=region_px,
        input_bytes=image_bytes,
        climate_bytes=climate_bytes,
        flops_per_pixel=flops_per_pixel(model, grid.stride, mode),
        mode=mode,
        gpu_tflops=gpu_tflops,
    )
