"""Planning a map: tiles over the region, area, bytes to read, FLOPs and time on N GPUs.

FLOPs are counted (``torch.utils.flop_counter.FlopCounterMode``) by predicting one small
``k x k`` output-pixel tile exactly as the map job does, and divided by ``k * k``; time on N
GPUs assumes the stated sustained throughput (`MapConfig.gpu_tflops`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pyproj import Transformer
from torch.utils.flop_counter import FlopCounterMode

from soilnet.data.climate_cube import ClimateCube
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


def _clipped_px(row0: int, col0: int, height: int, width: int, rows: int, cols: int) -> int:
    h = max(0, min(row0 + height, rows) - max(row0, 0))
    w = max(0, min(col0 + width, cols) - max(col0, 0))
    return h * w


def _climate_cells(grid: MapGrid, tile: Tile, climate: ClimateCube, tr: Transformer) -> int:
    """Climate pixels under a tile's bounding box (an estimate of the series it reads)."""
    west, south, east, north = grid.output.window(tile.row0, tile.col0, tile.height, tile.width).bounds
    x, y = tr.transform(np.array([west, east, west, east]), np.array([south, south, north, north]))
    rows, cols = climate.grid.rowcol(x, y)
    return int((rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1))


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
            f"time on {n_gpus} GPU(s)": f"{self.hours_on(n_gpus):.3f} h at {self.gpu_tflops:g} TFLOP/s each",
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
    region_px = image_bytes = climate_bytes = 0
    band_bytes = raster.bands.shape[0] * raster.bands.dtype.itemsize
    series_bytes = len(climate.variables) * len(climate.times) * 4
    to_climate = Transformer.from_crs(grid.output.epsg, climate.grid.epsg, always_xy=True)
    for tile in tiles:
        region_px += int(grid.region_mask(tile, shapes).sum())
        image_bytes += band_bytes * _clipped_px(*grid.input_window(tile), raster.grid.height, raster.grid.width)
        climate_bytes += series_bytes * _climate_cells(grid, tile, climate, to_climate)
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
