"""Reading one map tile: the image with its halo in one window read, and the climate of its pixels.

The climate series are read once per climate pixel the tile touches (S series), with an index
(h, w) from each output pixel to its series. The input hash covers exactly what predictions
depend on: raw image values, climate series, the series index and the region mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer

from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.climate_series import ClimateSeriesReader
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.region import Tile
from soilnet.mapping.tiling import MapGrid


@dataclass
class TileInputs:
    """A tile's inputs: raw int16 image (band, H, W), series (S, T, V), index (h, w), region mask (h, w)."""

    tile: Tile
    image: np.ndarray
    series: np.ndarray
    index: np.ndarray
    inside: np.ndarray

    def content_hash(self) -> str:
        """SHA-256 of every input array (shape, dtype and bytes)."""
        digest = hashlib.sha256()
        for arr in (self.image, self.series, self.index, self.inside):
            digest.update(f"{arr.shape}{arr.dtype}".encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()


class TileReader:
    """Opens the cubes once; reads tiles with their halo."""

    def __init__(
        self,
        raster_url: str,
        climate_url: str,
        grid: MapGrid,
        bands: list[str],
        variables: list[str],
        months: int,
        climate_end: str,
        shapes: list[dict[str, Any]] | None,
    ) -> None:
        self.raster = open_raster_cube(raster_url)
        self.climate = open_climate_cube(climate_url)
        self.band_index = self.raster.band_index(bands)
        missing = [v for v in variables if v not in self.climate.variables]
        if missing:
            raise ValueError(
                f"{self.climate.url}: climate variables {missing} missing (cube has {self.climate.variables})"
            )
        self.variable_index = [self.climate.variables.index(v) for v in variables]
        self.series_reader = ClimateSeriesReader(self.climate, self.climate.grid.epsg, months)
        self.to_climate = Transformer.from_crs(grid.output.epsg, self.climate.grid.epsg, always_xy=True)
        self.grid, self.shapes = grid, shapes
        self.end = np.datetime64(climate_end, "M")
        self.climate.month_index(self.end, months)  # fails early if the series do not fit the time axis

    def read(self, tile: Tile) -> TileInputs:
        """The tile's inputs, halo included; outside the cube the image is nodata."""
        row0, col0, height, width = self.grid.input_window(tile)
        image = self.raster.read_raw(row0, col0, height, width)[self.band_index]
        out = self.grid.output
        x = np.broadcast_to(out.x_coords(tile.col0, tile.width)[None, :], (tile.height, tile.width)).ravel()
        y = np.broadcast_to(out.y_coords(tile.row0, tile.height)[:, None], (tile.height, tile.width)).ravel()
        x, y = self.to_climate.transform(x, y)
        rows, cols = self.climate.pixels_of(x, y, self.climate.grid.epsg)
        keys = rows.astype(np.int64) * self.climate.grid.width + cols
        _, first, index = np.unique(keys, return_index=True, return_inverse=True)
        series = self.series_reader.read(x[first], y[first], np.full(len(first), self.end))
        return TileInputs(
            tile=tile,
            image=image,
            series=np.ascontiguousarray(series[:, :, self.variable_index]),
            index=index.reshape(tile.height, tile.width).astype(np.int32),
            inside=self.grid.region_mask(tile, self.shapes),
        )
