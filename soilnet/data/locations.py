"""Location tables that drive the sample stream: labelled points with folds, unlabelled SSL locations.

Both tables have the columns ``id`` (str), ``x`` / ``y`` (cube CRS, pixel centres for unlabelled
locations), ``date`` (the climate series ends at this month), ``target`` (float32, NaN when
unlabelled) and ``fold`` (spatial CV fold, -1 when unlabelled).

Unlabelled locations are drawn shard by shard of the raster cube: a fixed share of the total per
shard, candidates from a generator seeded by ``(seed, shard index)``, those within the buffer of
an excluded point dropped (KD-tree), then the shard (with a half-patch halo) read once to drop
patches where excluded land cover or nodata covers more than the allowed fraction. Memory holds
one shard at a time, so the count of locations and the size of the cube are not bounded by RAM.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from soilnet.data.bands import EXCLUDED_LANDCOVER
from soilnet.data.folds import FoldConfig, assign_folds
from soilnet.data.points import is_spectral_label
from soilnet.data.raster_cube import LANDCOVER_NODATA, RasterCube
from soilnet.data.stream_config import StreamConfig
from soilnet.progress import progress

log = logging.getLogger(__name__)

COLUMNS = ("id", "x", "y", "date", "target", "fold")
#: Optional column: the loss weight of a labelled row (1 for lab values, less for labels predicted from spectra).
WEIGHT = "weight"
#: Candidates drawn per wanted location, so that masked or buffered draws can be replaced.
OVERSAMPLE = 3


def location_columns(table: pd.DataFrame) -> list[str]:
    """The columns that travel with a location table's rows: `COLUMNS`, and ``weight`` if present."""
    return [*COLUMNS, *([WEIGHT] if WEIGHT in table.columns else [])]


def labelled_locations(
    points: pd.DataFrame, target: str, folds: FoldConfig, spectral_weight: float = 1.0
) -> pd.DataFrame:
    """The labelled location table of a points table, with spatial CV fold ids.

    Rows whose label was predicted from spectra (`is_spectral_label`) get ``weight`` =
    `spectral_weight`, lab values 1.
    """
    if target not in points.columns:
        raise ValueError(f"points table has no target column {target!r} (columns: {list(points.columns)})")
    values = points[target].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"target {target!r} is NaN or infinite at row {bad[0]} (id {points['id'].iloc[bad[0]]!r})")
    fold = assign_folds(points["x"].to_numpy(), points["y"].to_numpy(), folds)
    return pd.DataFrame(
        {
            "id": points["id"].astype(str).to_numpy(),
            "x": points["x"].to_numpy(dtype=np.float64),
            "y": points["y"].to_numpy(dtype=np.float64),
            "date": pd.to_datetime(points["date"]).to_numpy(dtype="datetime64[ns]"),
            "target": values.astype(np.float32),
            "fold": fold.astype(np.int64),
            WEIGHT: np.where(is_spectral_label(points["source"]), spectral_weight, 1.0).astype(np.float32),
        }
    )


def shard_quotas(cube: RasterCube, total: int) -> list[tuple[int, int, int, int, int]]:
    """(row0, col0, height, width, quota) of every shard; quotas follow area and sum to ``total``."""
    tiles = list(cube.grid.tiles(cube.layout.shard))
    area = np.array([h * w for _, _, h, w in tiles], dtype=np.float64)
    share = total * area / area.sum()
    quota = np.floor(share).astype(np.int64)
    rest = total - int(quota.sum())
    quota[np.argsort(-(share - quota), kind="stable")[:rest]] += 1
    return [(*tile, int(q)) for tile, q in zip(tiles, quota, strict=True)]


def masked_fraction(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Fraction of True pixels in the ``size`` px windows with top-left (rows, cols) of ``mask``."""
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    r1, c1 = rows + size, cols + size
    total = integral[r1, c1] - integral[rows, c1] - integral[r1, cols] + integral[rows, cols]
    return total / float(size * size)


def _shard_mask(cube: RasterCube, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """True where a pixel is nodata in any band, outside the grid, or excluded land cover."""
    mask = np.any(cube.read_raw(row0, col0, height, width) == cube.nodata, axis=0)
    if cube.has_landcover:
        lc = cube.read_raw(row0, col0, height, width, variable="landcover")
        mask |= np.isin(lc, (*EXCLUDED_LANDCOVER, LANDCOVER_NODATA))
    return mask


def unlabelled_locations(cube: RasterCube, cfg: StreamConfig, exclude_xy: np.ndarray | None = None) -> pd.DataFrame:
    """Random unlabelled locations over the cube, away from ``exclude_xy`` and mostly unmasked.

    ``exclude_xy`` (N, 2) are the labelled points pretraining must stay ``cfg.buffer_px`` pixels
    away from (all labelled points, or at least every test fold's). Deterministic for ``cfg.seed``.
    """
    if not cube.has_landcover:
        log.warning("%s has no landcover layer: unlabelled locations are filtered by nodata only", cube.url)
    tree = cKDTree(np.asarray(exclude_xy, dtype=np.float64)) if exclude_xy is not None and len(exclude_xy) else None
    buffer_m = cfg.buffer_px * cube.grid.res
    half = cfg.patch_px // 2
    parts = []
    shards = shard_quotas(cube, cfg.n_unlabelled)
    for index, (row0, col0, height, width, quota) in enumerate(progress(shards, "unlabelled locations")):
        if quota == 0:
            continue
        rng = np.random.default_rng([cfg.seed, index])
        n = quota * OVERSAMPLE
        flat = rng.integers(0, height * width, n)
        flat = flat[np.sort(np.unique(flat, return_index=True)[1])]
        rows, cols = row0 + flat // width, col0 + flat % width
        x, y = cube.grid.x_coords()[cols], cube.grid.y_coords()[rows]
        if tree is not None and buffer_m > 0:
            dist, _ = tree.query(np.column_stack([x, y]), k=1, distance_upper_bound=buffer_m)
            far = ~(dist < buffer_m)
            rows, cols, x, y = rows[far], cols[far], x[far], y[far]
        if rows.size == 0:
            continue
        mask = _shard_mask(cube, row0 - half, col0 - half, height + cfg.patch_px, width + cfg.patch_px)
        frac = masked_fraction(mask, rows - row0, cols - col0, cfg.patch_px)
        keep = np.flatnonzero(frac <= cfg.max_masked_fraction)[:quota]
        parts.append(pd.DataFrame({"id": [f"u-{r}-{c}" for r, c in zip(rows[keep], cols[keep], strict=True)],
                                   "x": x[keep], "y": y[keep]}))  # fmt: skip
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"id": [], "x": [], "y": []})
    if len(table) < cfg.n_unlabelled:
        log.warning(
            "kept %d of %d unlabelled locations (buffer or masks excluded the rest)", len(table), cfg.n_unlabelled
        )
    end = np.datetime64(cfg.unlabelled_end_month, "M").astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "id": table["id"].astype(str).to_numpy(),
            "x": table["x"].to_numpy(dtype=np.float64),
            "y": table["y"].to_numpy(dtype=np.float64),
            "date": np.full(len(table), end),
            "target": np.full(len(table), np.nan, dtype=np.float32),
            "fold": np.full(len(table), -1, dtype=np.int64),
        }
    )
