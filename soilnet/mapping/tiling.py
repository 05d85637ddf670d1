"""The map's output grid and its fixed tile grid, each tile read once with a halo of half a patch.

Output pixel (i, j) covers input pixels ``[i*s, (i+1)*s)`` (``s`` = stride = output / input
pixel size) and its prediction is made from the ``P`` px window starting at input pixel
``i*s + s//2 - P//2``: centred on the output pixel, the same convention as training windows
(`RasterCube.window_at`) when ``s == 1``. A tile of ``h`` output rows therefore reads
``(h - 1) * s + P`` input rows. The output pixel's own input block (what ``input_missing`` and
nodata look at) is its ``s x s`` pixels, or the window itself when ``s > P``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.features import rasterize

from soilnet.data.grid import Grid
from soilnet.data.region import Region, Tile, region_tiles

#: Relative tolerance when checking that the output resolution is a multiple of the input's.
RES_TOLERANCE = 1e-6


def stride_for(input_res: float, resolution_m: float) -> int:
    """Input pixels per output pixel; errors if the resolution is not a whole multiple of the input's."""
    ratio = resolution_m / input_res
    stride = round(ratio)
    if stride < 1 or abs(ratio - stride) > RES_TOLERANCE * ratio:
        lower, upper = max(1, math.floor(ratio)) * input_res, math.ceil(ratio) * input_res
        raise ValueError(
            f"resolution_m {resolution_m:g} is not a whole multiple of the raster cube's {input_res:g} m pixels "
            f"(use {lower:g} or {upper:g})"
        )
    return stride


@dataclass(frozen=True)
class MapGrid:
    """The output grid over an input raster grid, prediction windows of ``patch`` px, tiles of ``tile_px``."""

    input: Grid
    stride: int
    patch: int
    tile_px: int

    @classmethod
    def build(cls, input_grid: Grid, resolution_m: float, patch: int, tile_px: int) -> MapGrid:
        """The map grid for an output resolution in metres."""
        return cls(input_grid, stride_for(input_grid.res, resolution_m), patch, tile_px)

    @property
    def output(self) -> Grid:
        """The output grid: same origin as the input, ``stride`` times coarser."""
        s, g = self.stride, self.input
        a, _, c, _, _, f = g.transform
        return Grid.from_origin(g.epsg, c, f, a * s, math.ceil(g.width / s), math.ceil(g.height / s))

    @property
    def halo(self) -> int:
        """Input pixels read around a tile on each side (half a patch)."""
        return self.patch // 2

    @property
    def offset(self) -> int:
        """Input pixel where the window of output pixel 0 starts (relative to the output pixel's first)."""
        return self.stride // 2 - self.patch // 2

    def tiles(self, region: Region | None) -> list[Tile]:
        """Row-major tiles named by grid index, only those touching the region (all when None)."""
        out = self.output
        if region is not None:
            return region_tiles(out, self.tile_px, region)
        return [
            Tile(row0 // self.tile_px, col0 // self.tile_px, row0, col0, h, w)
            for row0, col0, h, w in out.tiles(self.tile_px)
        ]

    def input_window(self, tile: Tile) -> tuple[int, int, int, int]:
        """(row0, col0, height, width) in input pixels that a tile's windows read, halo included."""
        s, p = self.stride, self.patch
        return (
            tile.row0 * s + self.offset,
            tile.col0 * s + self.offset,
            (tile.height - 1) * s + p,
            (tile.width - 1) * s + p,
        )

    def block_index(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (height, b) and columns (width, b) of each output pixel's input block in the tile's input window.

        The block is the output pixel's ``s x s`` input pixels, or the centred ``P x P`` when ``s > P``.
        """
        s, p = self.stride, self.patch
        b = min(s, p)
        start = p // 2 - b // 2
        rows = (np.arange(height) * s + start)[:, None] + np.arange(b)
        cols = (np.arange(width) * s + start)[:, None] + np.arange(b)
        return rows, cols

    def region_mask(self, tile: Tile, shapes: list[dict[str, Any]] | None) -> np.ndarray:
        """True for the tile's output pixels whose centre lies inside the region's projected polygons.

        ``shapes`` are the region's polygons in the grid's CRS (`Region.projected`), projected once
        per job; None means no region (every pixel is inside).
        """
        if shapes is None:
            return np.ones((tile.height, tile.width), dtype=bool)
        grid = self.output.window(tile.row0, tile.col0, tile.height, tile.width)
        inside = rasterize(
            [(polygon, 1) for polygon in shapes],
            out_shape=(tile.height, tile.width),
            transform=grid.affine,
            fill=0,
            dtype="uint8",
        )
        return inside.astype(bool)
