"""SSL pretraining windows cut many per decoded shard, normalised in place in the batch buffer.

Where the sampler may choose (self-supervised pretraining), a shard is fetched in one GET and
decoded once (`ShardWindowReader.read_shard`), and ``windows_per_shard`` random crops (they may
overlap, as SSL crops do) are cut from it straight into a preallocated float32 batch buffer:
``raw * (scale / s) + (offset - c) / s`` per band, one multiply and one add in place, with nodata
pixels set to 0 (the normalised mean). Nothing else is allocated per window.
"""

from __future__ import annotations

import numpy as np

from soilnet.data.raster_cube import RasterCube
from soilnet.data.shard_reader import ShardWindowReader


class ShardWindowCutter:
    """Cuts random ``patch_px`` windows from whole decoded shards of a raster cube."""

    def __init__(
        self,
        cube: RasterCube,
        patch_px: int = 64,
        center: np.ndarray | None = None,
        spread: np.ndarray | None = None,
        threads: int = 16,
    ) -> None:
        bands = len(cube.band_names)
        center = np.zeros(bands) if center is None else np.asarray(center, dtype=np.float64)
        spread = np.ones(bands) if spread is None else np.asarray(spread, dtype=np.float64)
        if center.shape != (bands,) or spread.shape != (bands,) or np.any(spread <= 0):
            raise ValueError(f"{cube.url}: need one center and one positive spread per band ({bands})")
        self.cube, self.patch_px = cube, patch_px
        self.reader = ShardWindowReader(cube.url, cube.bands, "bands", threads)
        self.gain = (cube.scale / spread).astype(np.float32)[:, None, None]
        self.bias = ((cube.offset - center) / spread).astype(np.float32)[:, None, None]

    def corners(self, sy: int, sx: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random top-left (row, col) within shard (sy, sx), global pixels, windows inside the shard and grid."""
        shard, grid, p = self.cube.layout.shard, self.cube.grid, self.patch_px
        h, w = min(shard, grid.height - sy * shard), min(shard, grid.width - sx * shard)
        if h < p or w < p:
            raise ValueError(f"{self.cube.url}: shard ({sy}, {sx}) is {h} x {w} px, smaller than a {p} px window")
        return sy * shard + rng.integers(0, h - p + 1, count), sx * shard + rng.integers(0, w - p + 1, count)

    def cut(self, sy: int, sx: int, rows: np.ndarray, cols: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalised float32 (K, band, P, P) windows with global top-left corners in shard (sy, sx)."""
        p, shard = self.patch_px, self.cube.layout.shard
        raw = self.reader.read_shard(sy, sx)
        if out is None:
            out = np.empty((len(rows), raw.shape[0], p, p), dtype=np.float32)
        nodata = raw == self.cube.nodata
        has_nodata = bool(nodata.any())
        for k, (r, c) in enumerate(zip(np.asarray(rows) - sy * shard, np.asarray(cols) - sx * shard, strict=True)):
            np.multiply(raw[:, r : r + p, c : c + p], self.gain, out=out[k], casting="unsafe")
            out[k] += self.bias
            if has_nodata:
                out[k][nodata[:, r : r + p, c : c + p]] = 0.0
        return out

    def cut_raw(self, sy: int, sx: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Raw int16 (K, band, P, P) windows, as `cut` but without normalisation."""
        p, shard = self.patch_px, self.cube.layout.shard
        raw = self.reader.read_shard(sy, sx)
        rel = zip(np.asarray(rows) - sy * shard, np.asarray(cols) - sx * shard, strict=True)
        return np.stack([raw[:, r : r + p, c : c + p] for r, c in rel])
