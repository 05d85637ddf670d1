"""GeoTIFF / COG files (local or s3://, any CRS, dtype, band count) -> raster cube, shard by shard.

Each cube shard is produced by warping only the source pixels it needs (`rasterio.warp.reproject`
from the open dataset, per source and shard), so memory is bounded by the shard size whatever the
file sizes. The resampling scale is fixed per source (GDAL otherwise derives it per chunk), so shard
edges are seamless and the cube equals a one-shot warp of the whole grid. Sources are mosaicked
in the order given: the first valid value wins. Finished shards are recorded under the cube
(`IngestProgress`), so a rerun after an interruption skips them and produces the same bytes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from soilnet import storage
from soilnet.data.grid import Grid
from soilnet.data.ingest.config import RasterIngestConfig
from soilnet.data.ingest.resume import IngestProgress, half_created
from soilnet.data.ingest.tiff_blocks import block_table_problem
from soilnet.data.raster_cube import KIND, RasterCubeWriter, RasterLayout, create_raster_cube, open_raster_cube

log = logging.getLogger(__name__)

#: Landsat Collection 2 Level-2 surface reflectance: reflectance = DN * scale + offset.
LANDSAT_SR_SCALE = 2.75e-5
LANDSAT_SR_OFFSET = -0.2


class RasterIngestError(ValueError):
    """An input raster cannot be ingested; the message names the file and the problem."""


@dataclass(frozen=True)
class RasterSource:
    """An input raster as seen from the cube grid."""

    url: str
    count: int
    nodata: float | None
    bounds: tuple[float, float, float, float]  # in the cube CRS
    scale: tuple[float, float]  # cube pixels per source pixel (x, y), fixed so shards match a one-shot warp


@dataclass(frozen=True)
class BandPlan:
    """Which file band feeds each cube band, how it is scaled, and the QA band if masking."""

    names: tuple[str, ...]
    indexes: tuple[int, ...]  # 1-based file band per cube band
    scale: np.ndarray
    offset: np.ndarray
    n_source_bands: int
    qa_index: int | None
    qa_mask: int


@dataclass(frozen=True)
class RasterIngestReport:
    """What one ingest run did."""

    cube_url: str
    sources: int
    shards_total: int
    shards_written: int
    shards_empty: int
    shards_skipped: int
    megapixels: float


def plan_bands(band_names: Sequence[str], cfg: RasterIngestConfig) -> BandPlan:
    """Map cube bands onto file bands by the declared source band list."""
    names = tuple(band_names)
    source = list(cfg.source_bands or names)
    missing = [n for n in names if n not in source]
    if missing:
        raise RasterIngestError(f"cube bands {missing} are not among the declared source bands {source}")
    scale = np.ones(len(names), dtype=np.float32)
    offset = np.zeros(len(names), dtype=np.float32)
    qa_index, qa_mask = None, 0
    if cfg.landsat_c2:
        sr = np.array([n.startswith("SR_B") for n in names])
        scale[sr], offset[sr] = LANDSAT_SR_SCALE, LANDSAT_SR_OFFSET
        if cfg.qa_mask_bits:
            if cfg.qa_band not in source:
                raise RasterIngestError(f"Landsat QA band {cfg.qa_band!r} is not among the source bands {source}")
            qa_index = source.index(cfg.qa_band) + 1
            qa_mask = sum(1 << b for b in cfg.qa_mask_bits)
    return BandPlan(
        names=names,
        indexes=tuple(source.index(n) + 1 for n in names),
        scale=scale,
        offset=offset,
        n_source_bands=len(source),
        qa_index=qa_index,
        qa_mask=qa_mask,
    )


def _open(url: str) -> rasterio.DatasetReader:
    try:
        return rasterio.open(storage.gdal_path(url))
    except RasterioError as exc:
        raise RasterIngestError(f"{url}: not a readable GeoTIFF ({exc})") from exc


def inspect_source(url: str, grid: Grid | int, n_bands: int, src_nodata: float | None = None) -> RasterSource:
    """Open a raster and check it has a CRS, at least ``n_bands`` bands, a block table matching its size
    (GeoTIFF) and a readable last block (so a truncated file is refused before any cube is touched);
    bounds in the grid's CRS."""
    epsg = grid if isinstance(grid, int) else grid.epsg
    with storage.rasterio_env(url), _open(url) as src:
        if src.crs is None:
            raise RasterIngestError(f"{url}: raster has no CRS (georeference it, e.g. gdal_edit.py -a_srs)")
        if src.count < n_bands:
            raise RasterIngestError(f"{url}: has {src.count} bands, {n_bands} declared")
        problem = block_table_problem(url) if src.driver == "GTiff" else None
        if problem is not None:
            raise RasterIngestError(f"{url}: {problem}")
        try:
            src.read(window=Window(src.width - 1, src.height - 1, 1, 1))
        except RasterioError as exc:
            raise RasterIngestError(f"{url}: the last block cannot be read: truncated or corrupt? ({exc})") from exc
        bounds = transform_bounds(src.crs, CRS.from_epsg(epsg), *src.bounds, densify_pts=21)
        nodata = src.nodata if src.nodata is not None else src_nodata
        res = 1.0 if isinstance(grid, int) else grid.res
        scale = ((bounds[2] - bounds[0]) / src.width / res, (bounds[3] - bounds[1]) / src.height / res)
        return RasterSource(url=url, count=src.count, nodata=nodata, bounds=bounds, scale=scale)


def grid_from_sources(
    urls: Sequence[str], epsg: int, resolution: float, bounds: tuple[float, float, float, float] | None = None
) -> Grid:
    """The grid covering ``bounds`` (or the union of the inputs), snapped outward to whole pixels."""
    if bounds is None:
        boxes = [inspect_source(u, epsg, 1).bounds for u in urls]
        if not boxes:
            raise RasterIngestError("no input rasters given")
        bounds = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    west = math.floor(bounds[0] / resolution) * resolution
    south = math.floor(bounds[1] / resolution) * resolution
    east = math.ceil(bounds[2] / resolution) * resolution
    north = math.ceil(bounds[3] / resolution) * resolution
    width, height = round((east - west) / resolution), round((north - south) / resolution)
    return Grid.from_origin(epsg, west, north, resolution, width, height)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _warp(
    src: rasterio.DatasetReader, source: RasterSource, tile: Grid, indexes: Sequence[int], resampling: Resampling
) -> np.ndarray:
    """Warp the source pixels a tile needs (GDAL reads only those) into float32 (band, h, w), NaN = nodata."""
    out = np.full((len(indexes), tile.height, tile.width), np.nan, dtype=np.float32)
    reproject(
        rasterio.band(src, list(indexes)),
        out,
        src_nodata=source.nodata,
        dst_transform=tile.affine,
        dst_crs=tile.crs,
        dst_nodata=np.nan,
        resampling=resampling,
        XSCALE=source.scale[0],
        YSCALE=source.scale[1],
    )
    return out


def read_tile(
    sources: Sequence[RasterSource], tile: Grid, plan: BandPlan, cfg: RasterIngestConfig
) -> np.ndarray | None:
    """Float32 (band, h, w) values of a tile mosaicked from the sources (NaN = nodata); None if none overlap."""
    out: np.ndarray | None = None
    resampling = Resampling[cfg.resampling]
    for source in sources:
        if not _overlaps(source.bounds, tile.bounds):
            continue
        with storage.rasterio_env(source.url), _open(source.url) as src:
            try:
                values = _warp(src, source, tile, plan.indexes, resampling)
                if plan.qa_index is not None:
                    qa = _warp(src, source, tile, [plan.qa_index], Resampling.nearest)[0]
                    flagged = (np.nan_to_num(qa).astype(np.uint32) & plan.qa_mask) != 0
                    values[:, flagged] = np.nan
            except RasterioError as exc:
                raise RasterIngestError(f"{source.url}: read failed, file corrupt or truncated? ({exc})") from exc
        values = values * plan.scale[:, None, None] + plan.offset[:, None, None]
        out = values if out is None else np.where(np.isnan(out), values, out)
        if not np.isnan(out).any():
            break
    return out


def _warn_clipped(writer: RasterCubeWriter, values: np.ndarray, key: str) -> None:
    cube = writer.cube
    low = cube.offset - 32767 * cube.scale
    high = cube.offset + 32767 * cube.scale
    with np.errstate(invalid="ignore"):
        outside = (values < low[:, None, None]) | (values > high[:, None, None])
    for i in np.flatnonzero(outside.any(axis=(1, 2))):
        log.warning(
            "%s shard %s: %d values of band %r outside its storable range [%g, %g] are clipped",
            cube.url, key, int(outside[i].sum()), cube.band_names[i], low[i], high[i],
        )  # fmt: skip


def shard_key(row0: int, col0: int) -> str:
    """Name of the shard starting at pixel (row0, col0)."""
    return f"r{row0:07d}_c{col0:07d}"


def _fingerprint(urls: Sequence[str], grid: Grid, plan: BandPlan, cfg: RasterIngestConfig) -> dict[str, Any]:
    return {
        "kind": "raster",
        "sources": list(urls),
        "grid": grid.to_attrs(),
        "bands": list(plan.names),
        "settings": cfg.model_dump(mode="json", exclude={"workers"}),
    }


def _target(
    cube_url: str,
    grid: Grid,
    plan: BandPlan,
    layout: RasterLayout,
    attrs: dict[str, Any],
    fingerprint: dict[str, Any],
    overwrite: bool,
) -> tuple[RasterCubeWriter, IngestProgress]:
    exists = storage.exists(storage.join(cube_url, "zarr.json"))
    if exists and not overwrite and not half_created(cube_url, KIND):
        cube = open_raster_cube(cube_url, writable=True)
        return RasterCubeWriter(cube), IngestProgress.resume(cube.url, cube.group, fingerprint)
    writer = create_raster_cube(cube_url, grid, plan.names, layout, attrs, overwrite=exists)
    return writer, IngestProgress.start(writer.cube.url, writer.cube.group, fingerprint)


def run_bounded(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> Iterator[Any]:
    """``fn`` over items on ``workers`` threads, at most 2 x workers in flight; stops at the first error."""
    pending: set[Future[Any]] = set()
    todo = iter(items)
    with ThreadPoolExecutor(workers) as pool:
        try:
            while True:
                for item in todo:
                    pending.add(pool.submit(fn, item))
                    if len(pending) >= 2 * workers:
                        break
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def ingest_rasters(
    urls: Sequence[str | os.PathLike[str]],
    cube_url: str | os.PathLike[str],
    grid: Grid,
    band_names: Sequence[str],
    cfg: RasterIngestConfig | None = None,
    layout: RasterLayout | None = None,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
    on_shard: Callable[[str, bool], None] | None = None,
) -> RasterIngestReport:
    """Mosaic and reproject raster files onto ``grid`` into the raster cube at ``cube_url``.

    Every input is checked (readable, has a CRS, enough bands) before the cube is touched. A rerun
    with the same inputs resumes, skipping shards already written; an existing cube made otherwise
    is refused unless ``overwrite``. ``on_shard(key, written)`` is called after each shard is done.
    """
    cfg = cfg or RasterIngestConfig()
    layout = layout or RasterLayout()
    names = [os.fspath(u) for u in urls]
    if not names:
        raise RasterIngestError("no input rasters given")
    plan = plan_bands(band_names, cfg)
    sources = [inspect_source(u, grid, plan.n_source_bands, cfg.src_nodata) for u in names]
    fingerprint = _fingerprint(names, grid, plan, cfg)
    writer, progress = _target(
        os.fspath(cube_url), grid, plan, layout, {"ingest_sources": names, **(attrs or {})}, fingerprint, overwrite
    )
    shard = writer.cube.layout.shard  # a resumed cube keeps its own layout
    done = progress.done()
    tiles = [t for t in grid.tiles(shard) if shard_key(t[0], t[1]) not in done]
    log.info("%s: %d shards to ingest from %d files (%d already done)", writer.cube.url, len(tiles), len(sources),
             len(done))  # fmt: skip

    def one(tile: tuple[int, int, int, int]) -> tuple[str, bool]:
        row0, col0, height, width = tile
        key = shard_key(row0, col0)
        values = read_tile(sources, grid.window(row0, col0, height, width), plan, cfg)
        if values is not None:
            _warn_clipped(writer, values, key)
            writer.write_tile(row0, col0, values)
        progress.mark(key)
        return key, values is not None

    written = empty = 0
    for key, wrote in run_bounded(one, tiles, cfg.workers):
        written += wrote
        empty += not wrote
        if on_shard is not None:
            on_shard(key, wrote)
    progress.finish()
    total = sum(1 for _ in grid.tiles(shard))
    return RasterIngestReport(
        cube_url=writer.cube.url,
        sources=len(sources),
        shards_total=total,
        shards_written=written,
        shards_empty=empty,
        shards_skipped=total - len(tiles),
        megapixels=sum(t[2] * t[3] for t in tiles) / 1e6,
    )
