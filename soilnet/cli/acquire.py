"""``soilnet acquire ...``: export Landsat-8, TerraClimate and WorldCover tiles from Earth Engine.

Every command reads the ``acquire`` section of a YAML config (or a YAML file that is only that
section); ``--set field=value`` overrides a field of the section. ``ingest`` also reads the cube
URLs (``data``) and chunking (``raster_layout``, ``climate_layout``) of a full soilnet config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from soilnet.cli.common import SectionConfigOpt, SetOpt, configure_section, console, results, run_guarded
from soilnet.data.earth_engine.products import Product

if TYPE_CHECKING:
    from soilnet.data.climate_cube import ClimateLayout
    from soilnet.data.earth_engine.acquire import ProductPlan
    from soilnet.data.earth_engine.config import AcquireConfig
    from soilnet.data.earth_engine.landing import LandingReport
    from soilnet.data.earth_engine.tasks import RunSummary
    from soilnet.data.raster_cube import RasterLayout
    from soilnet.data.workspace import DataConfig

app = typer.Typer(
    help="Export Landsat-8, TerraClimate and WorldCover tiles from Google Earth Engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def load_acquire_config(path: Path, overrides: list[str] | None = None, log_level: str = "WARNING") -> AcquireConfig:
    """The ``acquire`` section of a YAML file (or the whole file), with ``field=value`` overrides."""
    from soilnet.data.earth_engine.config import AcquireConfig

    return configure_section(path, "acquire", AcquireConfig, overrides, log_level)


def _acquisition_errors() -> tuple[type[BaseException], ...]:
    """Earth Engine's failures that are not input errors: missing credentials, failed exports."""
    from soilnet.data.earth_engine.credentials import CredentialsError
    from soilnet.data.earth_engine.tasks import AcquisitionError

    return CredentialsError, AcquisitionError


@app.command("plan")
def plan(config: SectionConfigOpt, set_: SetOpt = None) -> None:
    """Show the tile grid of each product over the region (needs no Earth Engine access)."""
    from soilnet.data.earth_engine.acquire import plan_products
    from soilnet.data.region import load_region

    def body() -> list[ProductPlan]:
        cfg = load_acquire_config(config, set_)
        return plan_products(cfg, load_region(cfg.region))

    plans = run_guarded(body)
    table = Table("product", "period", "crs", "grid (w x h px)", "tile px", "tiles")
    for p in plans:
        table.add_row(
            p.product, p.period, p.grid.crs, f"{p.grid.width} x {p.grid.height}", str(p.tile_px), str(len(p.tiles))
        )
    results.print(table)


@app.command("run")
def run(
    config: SectionConfigOpt,
    set_: SetOpt = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Start the export tasks (capped, retried, resumable) and wait until every tile has landed."""
    from soilnet.data.earth_engine.acquire import run_acquisition

    columns = (TextColumn("tiles"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    cfg = run_guarded(lambda: load_acquire_config(config, set_, log_level))

    def body() -> RunSummary:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("tiles", total=None)
            return run_acquisition(cfg, progress=lambda done, total: bar.update(task, completed=done, total=total))

    summary = run_guarded(body, also=_acquisition_errors())
    console.print(
        f"{summary.total} tiles: {summary.skipped} already landed, {summary.completed} exported, "
        f"{summary.retries} retries; manifest {cfg.manifest_url}"
    )


@app.command("status")
def status(config: SectionConfigOpt, set_: SetOpt = None) -> None:
    """Count the tiles of the manifest per product and state."""
    from soilnet.data.earth_engine.manifest import Manifest

    manifest = run_guarded(lambda: Manifest.load(load_acquire_config(config, set_).manifest_url))
    states = ("pending", "running", "completed", "failed")
    table = Table("product", *states)
    for product in sorted({r.product for r in manifest.records.values()}):
        records = [r for r in manifest.records.values() if r.product == product]
        table.add_row(product, *(str(sum(r.state == s for r in records)) for s in states))
    results.print(table)
    for r in manifest.records.values():
        if r.state == "failed":
            console.print(f"[red]failed[/] {r.key}: {r.error}", highlight=False)


@app.command("landed")
def landed(
    config: SectionConfigOpt,
    set_: SetOpt = None,
    product: Annotated[Product | None, typer.Option(help="Only this product.")] = None,
) -> None:
    """Print the URL of every landed GeoTIFF tile, one per line (input for the ingest)."""
    from soilnet.data.earth_engine.acquire import landed_tiles

    records = run_guarded(lambda: landed_tiles(load_acquire_config(config, set_).manifest_url, product))
    for record in records:
        typer.echo(record.url)


def load_cube_settings(path: Path) -> tuple[DataConfig, RasterLayout, ClimateLayout]:
    """Cube URLs and chunking from the ``data``, ``raster_layout`` and ``climate_layout`` sections (or defaults)."""
    from pydantic import ValidationError

    from soilnet.config import ConfigError, format_validation_error, read_yaml
    from soilnet.data.climate_cube import ClimateLayout
    from soilnet.data.raster_cube import RasterLayout
    from soilnet.data.workspace import DataConfig

    tree = read_yaml(path)
    try:
        return (
            DataConfig.model_validate(tree.get("data") or {}),
            RasterLayout.model_validate(tree.get("raster_layout") or {}),
            ClimateLayout.model_validate(tree.get("climate_layout") or {}),
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc


@app.command("ingest")
def ingest(
    config: SectionConfigOpt,
    set_: SetOpt = None,
    raster_cube: Annotated[
        str | None, typer.Option("--raster-cube", help="Raster cube URL (default: data.raster of the config).")
    ] = None,
    climate_cube: Annotated[
        str | None, typer.Option("--climate-cube", help="Climate cube URL (default: data.climate of the config).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "WARNING",
) -> None:
    """Copy the landed tiles into the raster and climate cubes; a rerun skips tiles already ingested.

    Tiles are read from Cloud Storage (gs://, credentials from GOOGLE_APPLICATION_CREDENTIALS or the
    Earth Engine key) or from the copy named by `landing_mirror`. Tiles that land later are added by
    the next run; a cube is flagged complete once every tile of the manifest is in it.
    """
    from soilnet.data.earth_engine.landing import ingest_landed, tile_records
    from soilnet.data.earth_engine.manifest import Manifest

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    def body() -> LandingReport:
        cfg = load_acquire_config(config, set_, log_level)
        data, raster_layout, climate_layout = load_cube_settings(config)
        records = tile_records(Manifest.load(cfg.manifest_url), cfg).values()
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("landed tiles", total=sum(r.state == "completed" for rs in records for r in rs))
            report = ingest_landed(
                cfg,
                raster_cube or data.url("raster"),
                climate_cube or data.url("climate"),
                raster_layout=raster_layout,
                climate_layout=climate_layout,
                on_tile=lambda key, ingested: bar.update(task, advance=1, description=key),
            )
        return report

    report = run_guarded(body, also=_acquisition_errors())
    table = Table("product", "landed", "ingested", "already in cube")
    for product, landed in report.landed.items():
        table.add_row(product, str(landed), str(report.ingested[product]), str(report.skipped[product]))
    results.print(table)
    state = "complete" if report.complete else f"incomplete: {report.waiting} tiles not landed yet"
    console.print(f"raster cube {report.raster_cube}, climate cube {report.climate_cube}: {state}", highlight=False)
