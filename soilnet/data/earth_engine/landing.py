"""Landed Earth Engine tiles -> the raster cube and the climate cube, tile by tile, resumable.

- ``landsat`` tiles (the 14 bands of `BAND_NAMES`, nodata -32768) fill the raster cube's ``bands``;
- ``landcover`` tiles fill its ``landcover`` layer from their first band (WorldCover class; 255,
  the export's nodata, becomes the layer's nodata 0; the excluded-share band is not stored);
- ``climate`` tiles (bands ``<variable>_<YYYY-MM>``) fill the climate cube, variables in the
  declared order and months on the cube's monthly axis; nodata becomes NaN, true zeros stay zeros.

Tiles lie on the cube grids, so their pixels are copied, not resampled (`landed_tiles`). Each tile
is read window by window (memory bounded by a shard) and, once all its data is written, marked done
under the cube (`IngestProgress`): a rerun skips marked tiles without opening them, and tiles that
land later are added to the same cube. The cube's ingest, and the cube, are flagged complete once every
tile of the manifest has landed and been ingested; until then read-only opens refuse the cube.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soilnet import storage
from soilnet.data import climate_cube, raster_cube
from soilnet.data.bands import BAND_NAMES
from soilnet.data.climate_cube import (
    ClimateCube,
    ClimateLayout,
    create_climate_cube,
    month_starts,
    open_climate_cube,
    write_climate_block,
)
from soilnet.data.earth_engine import terraclimate, worldcover
from soilnet.data.earth_engine.acquire import cube_grids, period_of
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.earth_engine.exports import FLOAT_NODATA
from soilnet.data.earth_engine.landed_files import (
    LandedTileError,
    TilePlacement,
    check_bands,
    climate_band_indexes,
    open_tile,
    place_tile,
    read_classes,
    read_float,
    source_url,
)
from soilnet.data.earth_engine.manifest import Manifest, TileRecord
from soilnet.data.earth_engine.products import Product
from soilnet.data.grid import Grid
from soilnet.data.ingest.resume import IngestProgress, half_created
from soilnet.data.raster_cube import (
    LANDCOVER_NODATA,
    RasterCube,
    RasterCubeWriter,
    RasterLayout,
    create_raster_cube,
    open_raster_cube,
)
from soilnet.data.region import load_region

log = logging.getLogger(__name__)

#: Memory bound of one climate window (all variables and months), in bytes.
CLIMATE_WINDOW_BYTES = 64 * 2**20


@dataclass
class LandingReport:
    """What one landed-tile ingest did, per product."""

    raster_cube: str | None
    climate_cube: str | None
    landed: dict[str, int] = field(default_factory=dict)
    ingested: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    waiting: int = 0  # manifest tiles not landed yet (pending, running or failed)
    complete: bool = False


def _marker(key: str) -> str:
    """The done-marker name of a tile key (``landsat/2018/r0001_c0002`` -> ``landsat_2018_r0001_c0002``)."""
    return key.replace("/", "_")


def _raster_target(
    url: str, cfg: AcquireConfig, grid: Grid, layout: RasterLayout, attrs: dict[str, Any]
) -> tuple[RasterCube, IngestProgress]:
    """The raster cube to fill (resumed if this ingest made it, else created) and its bookkeeping."""
    landcover = "landcover" in cfg.products
    fingerprint = {
        "kind": "landed_raster",
        "grid": grid.to_attrs(),
        "bands": list(BAND_NAMES),
        "landcover": landcover,
        "period": period_of(cfg, "landsat"),
    }
    exists = storage.exists(storage.join(url, "zarr.json"))
    if exists and not half_created(url, raster_cube.KIND):
        cube = open_raster_cube(url, writable=True)
        return cube, IngestProgress.resume(cube.url, cube.group, fingerprint)
    cube = create_raster_cube(url, grid, BAND_NAMES, layout, attrs, landcover=landcover, overwrite=exists).cube
    return cube, IngestProgress.start(cube.url, cube.group, fingerprint)


def _climate_target(
    url: str, cfg: AcquireConfig, grid: Grid, layout: ClimateLayout, attrs: dict[str, Any]
) -> tuple[ClimateCube, IngestProgress]:
    """The climate cube to fill (resumed if this ingest made it, else created) and its bookkeeping."""
    months = terraclimate.climate_months(cfg.sampling_end_date, cfg.climate_months)
    fingerprint = {
        "kind": "landed_climate",
        "grid": grid.to_attrs(),
        "variables": list(terraclimate.VARIABLES),
        "months": [months[0], months[-1]],
    }
    exists = storage.exists(storage.join(url, "zarr.json"))
    if exists and not half_created(url, climate_cube.KIND):
        cube = open_climate_cube(url, writable=True)
        return cube, IngestProgress.resume(cube.url, cube.group, fingerprint)
    times = month_starts(months[0], len(months))
    cube = create_climate_cube(url, grid, terraclimate.VARIABLES, times, layout, attrs, overwrite=exists)
    return cube, IngestProgress.start(cube.url, cube.group, fingerprint)


def _check_whole_shards(tile: TilePlacement, cube: RasterCube) -> None:
    shard, grid = cube.layout.shard, cube.grid
    row1, col1 = tile.row0 + tile.height, tile.col0 + tile.width
    ragged_end = (row1 % shard and row1 != grid.height) or (col1 % shard and col1 != grid.width)
    if tile.row0 % shard or tile.col0 % shard or ragged_end:
        raise LandedTileError(
            f"{tile.url}: tile rows {tile.row0}..{row1}, cols {tile.col0}..{col1} do not cover whole "
            f"{shard} px shards of {cube.url} (export tiles must be a multiple of the cube's shard size)"
        )


def ingest_landsat_tile(url: str, cube: RasterCube) -> None:
    """Copy a landed 14-band Landsat tile into the raster cube's ``bands``, shard by shard."""
    writer = RasterCubeWriter(cube)
    with open_tile(url) as src:
        tile = place_tile(src, url, cube.grid, FLOAT_NODATA)
        check_bands(tile, BAND_NAMES)
        _check_whole_shards(tile, cube)
        indexes = range(1, len(BAND_NAMES) + 1)
        for window in tile.windows(cube.layout.shard):
            r, c = window[:2]
            writer.write_tile(tile.row0 + r, tile.col0 + c, read_float(src, tile, window, indexes))


def ingest_landcover_tile(url: str, cube: RasterCube) -> None:
    """Copy the WorldCover class band of a landed land-cover tile into the raster cube's ``landcover``."""
    if not cube.has_landcover:
        raise LandedTileError(f"{url}: {cube.url} has no landcover layer (created without the landcover product)")
    with open_tile(url) as src:
        tile = place_tile(src, url, cube.grid, float(worldcover.NODATA))
        check_bands(tile, worldcover.BANDS)
        _check_whole_shards(tile, cube)
        for window in tile.windows(cube.layout.shard):
            classes = read_classes(src, tile, window, LANDCOVER_NODATA)
            row0, col0 = tile.row0 + window[0], tile.col0 + window[1]
            cube.group["landcover"][row0 : row0 + window[2], col0 : col0 + window[3]] = classes


def ingest_climate_tile(url: str, cube: ClimateCube) -> None:
    """Copy a landed climate tile into the climate cube, bands sorted into (variable, month)."""
    with open_tile(url) as src:
        tile = place_tile(src, url, cube.grid, FLOAT_NODATA)
        index = climate_band_indexes(tile, cube.variables, cube.times)
        chunk = cube.data.chunks[2]
        side = max(chunk, int(math.sqrt(CLIMATE_WINDOW_BYTES / (4 * index.size))) // chunk * chunk)
        for window in tile.windows(side):
            r, c, h, w = window
            values = read_float(src, tile, window, index.ravel()).reshape(*index.shape, h, w)
            write_climate_block(cube, tile.row0 + r, tile.col0 + c, values)


def tile_records(manifest: Manifest, cfg: AcquireConfig) -> dict[Product, list[TileRecord]]:
    """Manifest records of each configured product for the configured period, in key order."""
    out: dict[Product, list[TileRecord]] = {}
    for product in cfg.products:
        prefix = f"{product}/{period_of(cfg, product)}/"
        out[product] = sorted((r for r in manifest.records.values() if r.key.startswith(prefix)), key=lambda r: r.key)
    return out


def _cube_of(product: Product) -> str:
    return "climate" if product == "climate" else "raster"


def ingest_landed(
    cfg: AcquireConfig,
    raster_cube_url: str,
    climate_cube_url: str,
    raster_grid: Grid | None = None,
    climate_grid: Grid | None = None,
    *,
    raster_layout: RasterLayout | None = None,
    climate_layout: ClimateLayout | None = None,
    on_tile: Callable[[str, bool], None] | None = None,
) -> LandingReport:
    """Ingest every landed tile of the manifest ``cfg.manifest_url`` into the raster and climate cubes.

    Tiles are read from where they landed or from ``cfg.landing_mirror``. New cubes get the grids
    given (default: the grids the acquisition derived from the region); existing cubes must have
    been made by this ingest with the same grid, bands and period. ``on_tile(key, ingested)`` is
    called after each landed tile, with False for a tile already in its cube (not read again).
    """
    records = tile_records(Manifest.load(cfg.manifest_url), cfg)
    landed = {p: [r for r in rs if r.state == "completed"] for p, rs in records.items()}
    if raster_grid is None or climate_grid is None:
        raster_grid, climate_grid = cube_grids(cfg, load_region(cfg.region), raster_grid, climate_grid)
    attrs = {"source": "earth_engine", "manifest": cfg.manifest_url}
    targets: dict[str, tuple[RasterCube | ClimateCube, IngestProgress]] = {}
    if any(landed[p] for p in landed if _cube_of(p) == "raster"):
        targets["raster"] = _raster_target(raster_cube_url, cfg, raster_grid, raster_layout or RasterLayout(), attrs)
    if landed.get("climate"):
        layout = climate_layout or ClimateLayout()
        targets["climate"] = _climate_target(climate_cube_url, cfg, climate_grid, layout, attrs)
    report = LandingReport(
        raster_cube=targets["raster"][0].url if "raster" in targets else None,
        climate_cube=targets["climate"][0].url if "climate" in targets else None,
        landed={p: len(tiles) for p, tiles in landed.items()},
        ingested=dict.fromkeys(landed, 0),
        skipped=dict.fromkeys(landed, 0),
        waiting=sum(len(records[p]) - len(landed[p]) for p in records),
    )
    for product, tiles in landed.items():
        if tiles:
            _ingest_product(product, tiles, cfg, *targets[_cube_of(product)], report, on_tile)
    unfinished = {_cube_of(p) for p in records if not records[p] or len(landed[p]) < len(records[p])}
    for name, (_, progress) in targets.items():
        if name not in unfinished:
            progress.finish()
    report.complete = not unfinished
    return report


def _ingest_product(
    product: Product,
    records: list[TileRecord],
    cfg: AcquireConfig,
    cube: RasterCube | ClimateCube,
    progress: IngestProgress,
    report: LandingReport,
    on_tile: Callable[[str, bool], None] | None,
) -> None:
    done = progress.done()
    log.info("%s: %d tiles landed, %d already in %s", product, len(records),
             sum(_marker(r.key) in done for r in records), cube.url)  # fmt: skip
    for record in records:
        fresh = _marker(record.key) not in done
        if fresh:
            url = source_url(record.url, cfg)
            if isinstance(cube, ClimateCube):
                ingest_climate_tile(url, cube)
            elif product == "landcover":
                ingest_landcover_tile(url, cube)
            else:
                ingest_landsat_tile(url, cube)
            progress.mark(_marker(record.key))
        report.ingested[product] += fresh
        report.skipped[product] += not fresh
        if on_tile is not None:
            on_tile(record.key, fresh)


__all__ = ["LandedTileError", "LandingReport", "ingest_landed", "tile_records"]
