"""New inputs from Earth Engine for a night: only the periods newer upstream than the cubes the map reads.

- climate: the newest TerraClimate month in Earth Engine against the climate cube's newest month;
- landsat: the newest complete year of Landsat-8 scenes (the year before the newest scene) against
  the year of the raster cube's composite (the ``year`` attribute the landed ingest records).

A newer period is exported through the acquisition's own client code (tile requests, capped and
retried tasks, the manifest: `soilnet.data.earth_engine.acquire.run_acquisition`) and ingested
(`soilnet.data.earth_engine.landing.ingest_landed`) into a new cube per period beside the current one
(``<cube>-<period>.zarr``: a cube's time axis or composite year is fixed), on the current cube's grid
so tiles line up. The map then reads the new cubes; their shard digests tell the map job what changed.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from soilnet.data.earth_engine.config import AcquireConfig, Product
from soilnet.mapping.config import MapConfig

if TYPE_CHECKING:
    from soilnet.data.raster_cube import RasterCube

log = logging.getLogger(__name__)


def newer_periods(
    acquire: AcquireConfig, cube_month: str, cube_year: int | None, upstream_month: str, upstream_year: int
) -> AcquireConfig | None:
    """The acquisition of only what is new upstream (climate months, a landsat year), or None."""
    products: list[Product] = []
    update: dict[str, object] = {}
    if upstream_month > cube_month:
        products.append("climate")
        update["sampling_end_date"] = dt.date.fromisoformat(f"{upstream_month}-01")
    if cube_year is not None and upstream_year > cube_year:
        products += ["landsat", *(["landcover"] if "landcover" in acquire.products else [])]  # one new raster cube
        update["year"] = upstream_year
    if not products:
        return None
    return acquire.model_copy(update={**update, "products": products})


def composite_year(raster: RasterCube) -> int | None:
    """The Landsat year of a raster cube made by the landed ingest (its fingerprint's period), else None."""
    from soilnet.data.ingest.resume import GROUP

    node = raster.group.get(GROUP)
    period = str(node.attrs.get("fingerprint", {}).get("period", "")) if node is not None else ""
    return int(period) if period.isdigit() else None


def period_url(cube_url: str, period: str) -> str:
    """Where the cube of a new period is ingested: beside the current cube."""
    base = re.sub(r"-\d{4}(-\d{2})?$", "", cube_url.rstrip("/").removesuffix(".zarr"))
    return f"{base}-{period}.zarr"


def upstream_periods() -> tuple[str, int]:
    """(newest TerraClimate month, newest complete Landsat-8 year) in Earth Engine (``ee`` initialised)."""
    import ee

    from soilnet.data.earth_engine import landsat, terraclimate

    newest_climate = ee.ImageCollection(terraclimate.COLLECTION).aggregate_max("system:time_start").getInfo()
    newest_scene = ee.ImageCollection(landsat.COLLECTION).aggregate_max("system:time_start").getInfo()
    month = dt.datetime.fromtimestamp(newest_climate / 1000, dt.UTC).strftime("%Y-%m")
    return month, dt.datetime.fromtimestamp(newest_scene / 1000, dt.UTC).year - 1


def refresh_inputs(
    acquire: AcquireConfig,
    map_cfg: MapConfig,
    *,
    upstream: Callable[[], tuple[str, int]] = upstream_periods,
    **acquisition: object,
) -> MapConfig:
    """Export and ingest what is new upstream; returns ``map_cfg`` reading the new cubes (unchanged if none).

    ``acquisition`` passes through to `run_acquisition` (``service``, ``sleep``, ``clock``: tests, offline).
    """
    from soilnet.data.climate_cube import open_climate_cube
    from soilnet.data.earth_engine.acquire import run_acquisition
    from soilnet.data.earth_engine.credentials import initialize_earth_engine
    from soilnet.data.earth_engine.landing import ingest_landed
    from soilnet.data.raster_cube import open_raster_cube

    raster, climate = open_raster_cube(map_cfg.raster), open_climate_cube(map_cfg.climate)
    if "service" not in acquisition:
        initialize_earth_engine(acquire)
    month, year = upstream()
    plan = newer_periods(acquire, str(climate.times[-1].astype("datetime64[M]")), composite_year(raster), month, year)
    if plan is None:
        log.info("nothing new upstream (climate %s, landsat %s)", month, year)
        return map_cfg
    run_acquisition(plan, raster_grid=raster.grid, climate_grid=climate.grid, **acquisition)  # type: ignore[arg-type]
    update = {}
    if "climate" in plan.products:
        update["climate"] = period_url(map_cfg.climate, plan.sampling_end_date.strftime("%Y-%m"))
    if "landsat" in plan.products:
        update["raster"] = period_url(map_cfg.raster, str(plan.year))
    report = ingest_landed(
        plan, update.get("raster", map_cfg.raster), update.get("climate", map_cfg.climate), raster.grid, climate.grid
    )
    if not report.complete:
        raise RuntimeError(f"new periods exported but {report.waiting} tiles have not landed yet: inputs not refreshed")
    log.info("new inputs ingested: %s", update)
    return map_cfg.model_copy(update=update)
