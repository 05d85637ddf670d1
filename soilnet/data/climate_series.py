"""Climate series of many locations with the cube's chunks cached: each chunk is read once per reader."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from soilnet.data.climate_cube import ClimateCube


class ClimateSeriesReader:
    """(N, months, variable) series ending at each location's month, from an LRU cache of chunks.

    A climate chunk holds the whole series of a block of cells, so nearby locations (and every
    later batch near them) are served from memory; ``max_chunks`` bounds the memory used.
    """

    def __init__(self, cube: ClimateCube, epsg: int, months: int, max_chunks: int = 256) -> None:
        if months > len(cube.times):
            raise ValueError(f"{cube.url}: {months} months asked, the cube holds {len(cube.times)}")
        self.cube, self.epsg, self.months, self.max_chunks = cube, epsg, months, max_chunks
        self.chunk = cube.data.chunks[2:]
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def _block(self, key: tuple[int, int]) -> np.ndarray:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        r0, c0 = key[0] * self.chunk[0], key[1] * self.chunk[1]
        block = np.asarray(self.cube.data[:, :, r0 : r0 + self.chunk[0], c0 : c0 + self.chunk[1]])
        self._cache[key] = block
        if len(self._cache) > self.max_chunks:
            self._cache.popitem(last=False)
        return block

    def read(self, x: np.ndarray, y: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Series of locations (x, y in the raster CRS) ending at (and including) the months ``end``."""
        row, col = self.cube.pixels_of(x, y, self.epsg)
        start = np.broadcast_to(self.cube.month_index(end, self.months), row.shape)
        out = np.empty((len(row), self.months, len(self.cube.variables)), dtype=np.float32)
        for i, (r, c, s) in enumerate(zip(row.tolist(), col.tolist(), start.tolist(), strict=True)):
            block = self._block((r // self.chunk[0], c // self.chunk[1]))
            out[i] = block[:, s : s + self.months, r % self.chunk[0], c % self.chunk[1]].T
        return out
