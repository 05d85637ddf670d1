"""Location tables that drive the sample stream: labelled points with folds, unlabelled SSL locations.

Both tables have the columns ``id`` (str), ``x`` / ``y`` (cube CRS, pixel centres for unlabelled
locations), ``date`` (the climate series ends at this month), ``target`` (float32, NaN when
unlabelled) and ``fold`` (spatial CV fold, -1 when unlabelled). A table of several outputs
(`labelled_outputs`, contract C1) carries the first output's labels in ``target`` and the others in
``target_1``, ``target_2``, ... (float32: values, or class codes; NaN = not labelled); batches stack
them into one ``target`` (B, K) (`label_matrix`). A location is a site: the rows of the points table
at the same x, y and date (its depth intervals) are one location.

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
from soilnet.data.points import class_codes, is_spectral_label
from soilnet.data.raster_cube import LANDCOVER_NODATA, RasterCube
from soilnet.data.stream_config import StreamConfig
from soilnet.data.targets import TargetOutput
from soilnet.progress import progress

log = logging.getLogger(__name__)

COLUMNS = ("id", "x", "y", "date", "target", "fold")
#: Optional column: the loss weight of a labelled row (1 for lab values, less for labels predicted from spectra).
WEIGHT = "weight"
#: Candidates drawn per wanted location, so that masked or buffered draws can be replaced.
OVERSAMPLE = 3


#: Labels of the second, third... output of a multi-output table: ``target_1``, ``target_2``, ...
LABEL_PREFIX = "target_"


def label_columns(table: pd.DataFrame | dict) -> list[str]:
    """``target`` and the further label columns of a table (or batch), in output order."""
    extra = [c for c in table if c.startswith(LABEL_PREFIX) and c[len(LABEL_PREFIX) :].isdigit()]
    return ["target", *sorted(extra, key=lambda c: int(c[len(LABEL_PREFIX) :]))]


def label_matrix(batch: pd.DataFrame | dict) -> np.ndarray:
    """The labels of a batch of location rows: (B,) float32 for one output, (B, K) for several."""
    columns = label_columns(batch)
    if len(columns) == 1:
        return np.asarray(batch["target"], dtype=np.float32)
    return np.stack([np.asarray(batch[c], dtype=np.float32) for c in columns], axis=1)


def location_columns(table: pd.DataFrame) -> list[str]:
    """The columns that travel with a location table's rows: `COLUMNS`, further labels and ``weight`` if present."""
    return [*COLUMNS, *label_columns(table)[1:], *([WEIGHT] if WEIGHT in table.columns else [])]


def shallowest_rows(points: pd.DataFrame) -> pd.DataFrame:
    """The rows of the shallowest depth interval (smallest top, then bottom) of a points table."""
    top, bottom = points["depth_top_cm"].to_numpy(), points["depth_bottom_cm"].to_numpy()
    first = min(zip(top.tolist(), bottom.tolist(), strict=True), default=None)
    if first is None or ((top == first[0]) & (bottom == first[1])).all():
        return points
    log.info("points at several depths: training on the shallowest, %g-%g cm (set finetune.depths)", *first)
    return points[(top == first[0]) & (bottom == first[1])]


def output_rows(points: pd.DataFrame, output: TargetOutput) -> np.ndarray:
    """Rows of the points table at the output's depth interval (every row without one)."""
    if output.column not in points.columns:
        raise ValueError(f"points table has no target column {output.column!r} (columns: {list(points.columns)})")
    if output.depth is None:
        return np.ones(len(points), dtype=bool)
    top, bottom = points["depth_top_cm"].to_numpy(), points["depth_bottom_cm"].to_numpy()
    return (top == output.depth[0]) & (bottom == output.depth[1])


def has_labels(points: pd.DataFrame, output: TargetOutput) -> bool:
    """Whether any row at the output's depth carries a label of its column."""
    return bool(points[output.column][output_rows(points, output)].notna().any())


def labelled_outputs(
    points: pd.DataFrame, outputs: list[TargetOutput], folds: FoldConfig, spectral_weight: float = 1.0
) -> pd.DataFrame:
    """The labelled location table of several outputs (`soilnet.data.targets.plan_outputs`), with folds.

    Each site (rows at one x, y, date) is one location; an output with a depth takes the labels of
    the site's row at that depth interval. Class labels become codes of the output's vocabulary.
    Sites without any label are left out; an output without any label is an error.
    """
    sites = points.groupby(["x", "y", "date"], sort=False).ngroup().to_numpy()
    labels = np.full((int(sites.max()) + 1 if len(sites) else 0, len(outputs)), np.nan)
    for k, out in enumerate(outputs):
        rows = output_rows(points, out)
        column = points[out.column][rows]
        values = class_codes(column, out.classes) if out.categorical else column.to_numpy(dtype=np.float64)
        values = np.where(np.isfinite(values), values, np.nan)
        labels[sites[rows], k] = values
        if not np.isfinite(labels[:, k]).any():
            raise ValueError(f"output {out.name!r} has no label in the points table (column {out.column!r})")
    first = pd.Series(np.arange(len(points))).groupby(sites).first().to_numpy()
    keep = np.isfinite(labels).any(axis=1)
    table = _location_frame(points.iloc[first[keep]], labels[keep], folds, spectral_weight)
    log.info("%d labelled sites for outputs %s (%d without a label left out)", keep.sum(), [o.name for o in outputs],
             (~keep).sum())  # fmt: skip
    return table


def _location_frame(
    points: pd.DataFrame, labels: np.ndarray, folds: FoldConfig, spectral_weight: float
) -> pd.DataFrame:
    """A labelled location table of points rows and their labels (N,) or (N, K), with folds and weights."""
    labels = labels.reshape(len(points), -1)
    fold = assign_folds(points["x"].to_numpy(), points["y"].to_numpy(), folds)
    columns = {"target": labels[:, 0].astype(np.float32)}
    columns.update({f"{LABEL_PREFIX}{k}": labels[:, k].astype(np.float32) for k in range(1, labels.shape[1])})
    return pd.DataFrame(
        {
            "id": points["id"].astype(str).to_numpy(),
            "x": points["x"].to_numpy(dtype=np.float64),
            "y": points["y"].to_numpy(dtype=np.float64),
            "date": pd.to_datetime(points["date"]).to_numpy(dtype="datetime64[ns]"),
            **columns,
            "fold": fold.astype(np.int64),
            WEIGHT: np.where(is_spectral_label(points["source"]), spectral_weight, 1.0).astype(np.float32),
        }
    )


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
    return _location_frame(points, values, folds, spectral_weight)


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
