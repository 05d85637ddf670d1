"""A generated continental sample set: labelled points at LUCAS density on the Europe grid, sparse cube.

The grid is the Europe acquisition plan's: EPSG:3035 at 30 m, 165,000 x 151,000 px. Points are
placed like LUCAS: the nodes of a 2 km survey grid over land (a generated land mask covering
``land_fraction`` of the grid), thinned with a probability that follows land-cover clusters
(smooth noise of ``cluster_km``), so that on average one point falls on ``km2_per_point`` km2 of
land but points bunch where cropland does and thin out elsewhere. A sub-window of the grid
(``window``) keeps the same land mask, clusters and density: only the area shrinks.

The raster cube gets pixels (`soilnet.data.landsat_texture`) only in the shards a point's window
touches; every other shard is an absent object, as in a cube that holds only what training reads.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pydantic import Field

from soilnet.configbase import StrictModel
from soilnet.data.bands import BAND_NAMES
from soilnet.data.grid import Grid
from soilnet.data.landsat_texture import landsat_tile
from soilnet.data.noise import fbm
from soilnet.data.raster_cube import RasterLayout, create_raster_cube
from soilnet.progress import progress

log = logging.getLogger(__name__)


class ContinentalConfig(StrictModel):
    """The continental grid, its land mask and the LUCAS-like point placement."""

    width_px: int = Field(165_000, ge=64, description="Grid width in pixels (Europe plan: 165,000).")
    height_px: int = Field(151_000, ge=64, description="Grid height in pixels (Europe plan: 151,000).")
    west: float = Field(2_500_000.0, description="West edge in EPSG:3035 metres.")
    north: float = Field(5_880_000.0, description="North edge in EPSG:3035 metres.")
    resolution_m: float = Field(30.0, gt=0, description="Pixel size in metres.")
    km2_per_point: float = Field(200.0, gt=0, description="Land area per labelled point on average (LUCAS: ~200).")
    survey_grid_km: float = Field(2.0, gt=0, description="Spacing of the survey grid the points are thinned from.")
    cluster_km: float = Field(60.0, gt=0, description="Size of the land-cover clusters that points follow.")
    cluster_strength: float = Field(1.5, ge=0, description="How strongly points bunch in clusters (log scale).")
    land_fraction: float = Field(0.2, gt=0, le=1, description="Share of the grid that is land (Europe: ~0.2).")
    window: tuple[int, int, int, int] | None = Field(
        None, description="(row0, col0, height, width) sub-window of the grid to place points in (None: all)."
    )
    seed: int = Field(0, ge=0, description="Seed of the land mask, clusters, thinning and pixels.")

    def grid(self) -> Grid:
        """The full continental grid."""
        return Grid.from_origin(3035, self.west, self.north, self.resolution_m, self.width_px, self.height_px)


def _field(rows: np.ndarray, cols: np.ndarray, cell_px: float, seed: int) -> np.ndarray:
    return fbm(rows, cols, cell_px, seed, 4)


def lucas_points(cfg: ContinentalConfig) -> pd.DataFrame:
    """Points (``id``, ``row``, ``col``, ``x``, ``y``) on land, thinned from the survey grid by clusters."""
    grid = cfg.grid()
    row0, col0, height, width = cfg.window or (0, 0, grid.height, grid.width)
    step = cfg.survey_grid_km * 1000 / cfg.resolution_m
    first_r, first_c = np.ceil(row0 / step) * step, np.ceil(col0 / step) * step
    rows = np.arange(first_r, row0 + height, step)[:, None]
    cols = np.arange(first_c, col0 + width, step)[None, :]
    # land: the same threshold for any window (the quantile of the whole grid's noise, fixed offline)
    land = _field(rows, cols, 600_000 / cfg.resolution_m, cfg.seed * 7 + 1) > _land_threshold(cfg)
    cluster = _field(rows, cols, cfg.cluster_km * 1000 / cfg.resolution_m, cfg.seed * 7 + 2)
    weight = np.exp(cfg.cluster_strength * cluster)
    keep_p = np.clip(cfg.survey_grid_km**2 / cfg.km2_per_point * weight / _mean_weight(cfg), 0, 1)
    rng = np.random.default_rng([cfg.seed, row0, col0])
    keep = land & (rng.random(land.shape) < keep_p)
    r_idx, c_idx = np.nonzero(keep)
    row = (rows[r_idx, 0] + rng.integers(-1, 2, len(r_idx))).astype(np.int64)
    col = (cols[0, c_idx] + rng.integers(-1, 2, len(c_idx))).astype(np.int64)
    inside = (row >= row0) & (row < row0 + height) & (col >= col0) & (col < col0 + width)
    row, col = row[inside], col[inside]
    x, y = grid.x_coords()[0] + col * grid.res, grid.y_coords()[0] - row * grid.res
    ids = [f"lucas-{r:06d}-{c:06d}" for r, c in zip(row.tolist(), col.tolist(), strict=True)]
    log.info("%d points in a %d x %d px window", len(row), width, height)
    return pd.DataFrame({"id": ids, "row": row, "col": col, "x": x, "y": y})


def _coarse_sample(cfg: ContinentalConfig, cell_px: float, seed: int) -> np.ndarray:
    """The noise field on a coarse lattice of the whole grid (for thresholds and means)."""
    step = 200.0 * 1000 / cfg.resolution_m / 20  # 10 km
    rows = np.arange(0, cfg.height_px, step)[:, None]
    cols = np.arange(0, cfg.width_px, step)[None, :]
    return _field(rows, cols, cell_px, seed)


def _land_threshold(cfg: ContinentalConfig) -> float:
    return float(np.quantile(_coarse_sample(cfg, 600_000 / cfg.resolution_m, cfg.seed * 7 + 1), 1 - cfg.land_fraction))


def _mean_weight(cfg: ContinentalConfig) -> float:
    noise = _coarse_sample(cfg, cfg.cluster_km * 1000 / cfg.resolution_m, cfg.seed * 7 + 2)
    return float(np.mean(np.exp(cfg.cluster_strength * noise)))


def inland_window(cfg: ContinentalConfig, height: int, width: int) -> tuple[int, int, int, int]:
    """A (row0, col0, height, width) sub-window centred on the most inland spot of the land mask."""
    step = 200.0 * 1000 / cfg.resolution_m / 20
    noise = _coarse_sample(cfg, 600_000 / cfg.resolution_m, cfg.seed * 7 + 1)
    r, c = np.unravel_index(int(np.argmax(noise)), noise.shape)
    row0 = int(np.clip(r * step - height // 2, 0, cfg.height_px - height))
    col0 = int(np.clip(c * step - width // 2, 0, cfg.width_px - width))
    return row0, col0, height, width


def window_shards(rows: np.ndarray, cols: np.ndarray, patch_px: int, shard: int, grid: Grid) -> list[tuple[int, int]]:
    """Sorted (shard row, shard col) of every shard of ``grid`` touched by a ``patch_px`` window centred on a point."""
    half = patch_px // 2
    last_r, last_c = (grid.height - 1) // shard, (grid.width - 1) // shard
    found: set[tuple[int, int]] = set()
    for r, c in zip(np.asarray(rows).tolist(), np.asarray(cols).tolist(), strict=True):
        for sr in range(max((r - half) // shard, 0), min((r - half + patch_px - 1) // shard, last_r) + 1):
            for sc in range(max((c - half) // shard, 0), min((c - half + patch_px - 1) // shard, last_c) + 1):
                found.add((sr, sc))
    return sorted(found)


def write_sparse_cube(
    cfg: ContinentalConfig,
    points: pd.DataFrame,
    url: str,
    patch_px: int = 64,
    layout: RasterLayout | None = None,
    overwrite: bool = False,
) -> list[tuple[int, int]]:
    """Write the continental raster cube with pixels only in the shards the points' windows touch.

    Returns the written shards (row, col). Every other shard is absent (reads as nodata).
    """
    layout = layout or RasterLayout()
    grid = cfg.grid()
    attrs = {"generator": "soilnet.continental_sample", **cfg.model_dump()}
    writer = create_raster_cube(url, grid, BAND_NAMES, layout, attrs, overwrite=overwrite)
    shards = window_shards(points["row"].to_numpy(), points["col"].to_numpy(), patch_px, layout.shard, grid)
    size = layout.shard
    for sr, sc in progress(shards, "continental shards"):
        r0, c0 = sr * size, sc * size
        h, w = min(size, grid.height - r0), min(size, grid.width - c0)
        writer.write_tile(r0, c0, landsat_tile(r0, c0, h, w, cfg.seed))
    writer.finish()
    total = -(-grid.height // size) * -(-grid.width // size)
    log.info("sparse cube %s: %d of %d shards written", url, len(shards), total)
    return shards
