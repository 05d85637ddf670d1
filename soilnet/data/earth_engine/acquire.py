"""The whole Earth Engine acquisition from one config: plan tiles, build exports, run the tasks.

Products and where their tiles land (``<prefix>/<product>/<period>/rRRRR_cCCCC.tif``):

- ``landsat``: the 14-band composite of `landsat_image` on the raster grid, period = year;
- ``landcover``: WorldCover classes and excluded share on the raster grid, period ``v200``;
- ``climate``: the TerraClimate series on the climate grid, period = the last month.

The raster and climate grids are derived from the region (snapped to the pixel size) unless
the caller passes the grids of existing cubes, so tiles line up with the cubes' pixels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import ee

from soilnet.data.earth_engine import landsat, terraclimate, worldcover
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.earth_engine.credentials import initialize_earth_engine
from soilnet.data.earth_engine.exports import FLOAT_NODATA, Destination, ExportRequest, build_requests
from soilnet.data.earth_engine.manifest import Manifest, TileRecord
from soilnet.data.earth_engine.products import Product
from soilnet.data.earth_engine.tasks import EarthEngineTaskService, RetryPolicy, RunSummary, TaskRunner, TaskService
from soilnet.data.grid import Grid
from soilnet.data.region import Region, Tile, load_region, region_grid, region_tiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProductPlan:
    """The tiles one product is exported as."""

    product: Product
    period: str
    grid: Grid
    tile_px: int
    tiles: list[Tile]


def destination_of(cfg: AcquireConfig) -> Destination:
    """The export destination named by the config."""
    return Destination(kind=cfg.destination, bucket=cfg.bucket, prefix=cfg.bucket_prefix, folder=cfg.drive_folder)


def period_of(cfg: AcquireConfig, product: Product) -> str:
    """The period part of a product's tile keys."""
    if product == "landsat":
        return str(cfg.year)
    if product == "climate":
        return terraclimate.climate_months(cfg.sampling_end_date, 1)[0]
    return "v200"


def cube_grids(
    cfg: AcquireConfig, region: Region, raster_grid: Grid | None = None, climate_grid: Grid | None = None
) -> tuple[Grid, Grid]:
    """The raster and climate grids: those given, else derived from the region (snapped to the pixel size)."""
    raster = raster_grid or region_grid(region, cfg.epsg, cfg.resolution_m)
    climate = climate_grid or region_grid(region, cfg.climate_epsg, cfg.climate_resolution)
    return raster, climate


def plan_products(
    cfg: AcquireConfig, region: Region, raster_grid: Grid | None = None, climate_grid: Grid | None = None
) -> list[ProductPlan]:
    """The tiles of every configured product that touch the region (needs no Earth Engine)."""
    raster, climate = cube_grids(cfg, region, raster_grid, climate_grid)
    plans = []
    for product in cfg.products:
        grid, tile_px = (climate, cfg.climate_tile_size_px) if product == "climate" else (raster, cfg.tile_size_px)
        tiles = region_tiles(grid, tile_px, region)
        plans.append(ProductPlan(product, period_of(cfg, product), grid, tile_px, tiles))
        log.info("%s: %d tiles of %d px on %s", product, len(tiles), tile_px, grid.crs)
    return plans


def product_image(cfg: AcquireConfig, plan: ProductPlan, region: Region) -> tuple[ee.Image, float]:
    """The Earth Engine image of a product and the GeoTIFF nodata value of its export."""
    if plan.product == "landsat":
        image = landsat.landsat_image(
            region.geojson(),
            cfg.year,
            cfg.max_cloud_fraction,
            cfg.max_snow_fraction,
            cfg.scene_window_px,
            crs=plan.grid.crs,  # slope on the cube's own grid
            scale=plan.grid.res,
        )
        return image, FLOAT_NODATA
    if plan.product == "climate":
        return terraclimate.climate_image(cfg.sampling_end_date, cfg.climate_months), FLOAT_NODATA
    return worldcover.landcover_image(plan.grid), float(worldcover.NODATA)


def export_requests(cfg: AcquireConfig, region: Region, plans: list[ProductPlan]) -> list[ExportRequest]:
    """Every tile's export request, product by product (``ee`` must be initialised)."""
    destination = destination_of(cfg)
    requests: list[ExportRequest] = []
    for plan in plans:
        image, nodata = product_image(cfg, plan, region)
        requests += build_requests(
            plan.product,
            plan.period,
            image,
            plan.grid,
            plan.tiles,
            destination,
            nodata=nodata,
            max_pixels=cfg.max_pixels,
            file_px=plan.tile_px,
        )
    return requests


def run_acquisition(
    cfg: AcquireConfig,
    *,
    service: TaskService | None = None,
    raster_grid: Grid | None = None,
    climate_grid: Grid | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Export every configured product over the region, resuming from the manifest.

    Without ``service``, Earth Engine is initialised from the configured credentials and its
    task service is used; a caller passing a service has initialised ``ee`` itself.
    """
    if service is None:
        initialize_earth_engine(cfg)
        service = EarthEngineTaskService()
    region = load_region(cfg.region)
    plans = plan_products(cfg, region, raster_grid, climate_grid)
    requests = export_requests(cfg, region, plans)
    runner = TaskRunner(
        service,
        Manifest.load(cfg.manifest_url),
        max_concurrent=cfg.max_concurrent_tasks,
        retry=RetryPolicy(cfg.max_retries, cfg.backoff_initial_s, cfg.backoff_max_s),
        poll_interval_s=cfg.poll_interval_s,
        sleep=sleep,
        clock=clock,
        progress=progress,
    )
    summary = runner.run(requests)
    log.info(
        "acquisition done: %d tiles, %d already landed, %d exported, %d retries",
        summary.total,
        summary.skipped,
        summary.completed,
        summary.retries,
    )
    return summary


def landed_tiles(manifest_url: str, product: Product | None = None) -> list[TileRecord]:
    """Tiles whose GeoTIFF has landed (``record.url``), for the raster / climate ingest."""
    return Manifest.load(manifest_url).landed(product)
