"""``soilnet ingest raster|climate|points``: bring files you already have into the cubes and the points table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from soilnet.cli.main import configure, run_guarded

app = typer.Typer(
    name="ingest",
    help="Ingest GeoTIFF / COG rasters, NetCDF climate series and soil sample tables (local or s3://).",
    no_args_is_help=True,
)
console = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (section `ingest`).")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override a field: ingest.raster.resampling=nearest.")
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing cube or table (else resume).")]


def _print_counts(title: str, rows: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("raster")
def raster(
    files: Annotated[list[str], typer.Argument(help="GeoTIFF / COG files or s3:// URLs, mosaicked in this order.")],
    bands: Annotated[str, typer.Option("--bands", help="Cube band names, comma separated (e.g. SR_B1,SR_B2).")],
    cube: Annotated[str | None, typer.Option("--cube", help="Raster cube URL (default: data.raster).")] = None,
    source_bands: Annotated[
        str | None, typer.Option("--source-bands", help="Name of each file band in order (default: --bands).")
    ] = None,
    landsat_c2: Annotated[
        bool, typer.Option("--landsat-c2", help="Raw Landsat C2 L2 DNs: scale/offset and QA_PIXEL masking.")
    ] = False,
    resampling: Annotated[str | None, typer.Option(help="nearest | bilinear | cubic | average | mode.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Mosaic and reproject rasters onto the cube grid, shard by shard; a rerun resumes where it stopped."""
    from soilnet.data.ingest.raster import grid_from_sources, ingest_rasters
    from soilnet.progress import progress

    def body() -> None:
        cfg = configure(config, set_)
        rcfg = cfg.ingest.raster.model_copy()
        if source_bands:
            rcfg.source_bands = source_bands.split(",")
        if landsat_c2:
            rcfg.landsat_c2 = True
        if resampling:
            rcfg.resampling = resampling  # type: ignore[assignment]
        grid = grid_from_sources(files, rcfg.epsg, rcfg.resolution, rcfg.bounds)
        bar = iter(progress(range(sum(1 for _ in grid.tiles(cfg.raster_layout.shard))), desc="shards"))
        report = ingest_rasters(
            files, cube or cfg.data.url("raster"), grid, bands.split(","), rcfg, cfg.raster_layout,
            overwrite=overwrite, on_shard=lambda *_: next(bar, None),
        )  # fmt: skip
        _print_counts(f"raster ingest -> {report.cube_url}", {
            "input files": report.sources,
            "grid": f"{grid.width} x {grid.height} px, {grid.crs}, {grid.res:g} m",
            "shards written": report.shards_written,
            "shards without data": report.shards_empty,
            "shards skipped (already done)": report.shards_skipped,
        })  # fmt: skip

    run_guarded(body)


@app.command("climate")
def climate(
    files: Annotated[list[str], typer.Argument(help="NetCDF files or s3:// URLs (any order).")],
    cube: Annotated[str | None, typer.Option("--cube", help="Climate cube URL (default: data.climate).")] = None,
    variables: Annotated[
        str | None, typer.Option("--variables", help="Variables in cube order, comma separated (default: config).")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Ingest monthly NetCDF series (TerraClimate layout or multi-variable) into the climate cube."""
    from soilnet.data.ingest.climate import ingest_climate

    def body() -> None:
        cfg = configure(config, set_)
        ccfg = cfg.ingest.climate.model_copy()
        if variables:
            ccfg.variables = variables.split(",")
        report = ingest_climate(files, cube or cfg.data.url("climate"), ccfg, cfg.climate_layout, overwrite=overwrite)
        _print_counts(f"climate ingest -> {report.cube_url}", {
            "input files": report.files,
            "variables": ", ".join(report.variables),
            "months": f"{report.first_month} .. {report.last_month}",
            "blocks written": report.blocks_written,
            "blocks skipped (already done)": report.blocks_skipped,
        })  # fmt: skip

    run_guarded(body)


@app.command("points")
def points(
    file: Annotated[str, typer.Argument(help="CSV or Parquet file of soil samples (local or s3://).")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="lucas2009 | lucas2015 | lucas2018 | raca | generic.")
    ] = None,
    out: Annotated[str | None, typer.Option("--out", help="Points table URL (default: data.points).")] = None,
    cube: Annotated[
        str | None,
        typer.Option("--cube", help="Raster cube whose grid is the region (points outside follow the rule)."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Harmonise a sample table into the points table; rejected rows go to <out>.rejects.csv with reasons."""
    from soilnet.data.ingest.points import ingest_points
    from soilnet.data.raster_cube import open_raster_cube

    def body() -> None:
        cfg = configure(config, set_)
        pcfg = cfg.ingest.points
        if fmt:
            pcfg = pcfg.model_validate({**pcfg.model_dump(), "format": fmt})
        grid = open_raster_cube(cube).grid if cube else None
        if grid is not None and grid.epsg != pcfg.epsg:
            pcfg = pcfg.model_copy(update={"epsg": grid.epsg})
        report = ingest_points(file, out or cfg.data.url("points"), pcfg, grid=grid, overwrite=overwrite)
        rows: dict[str, Any] = {"rows read": report.rows, "kept": report.kept}
        rows.update({f"rejected: {reason}": n for reason, n in sorted(report.rejected.items())})
        rows["table"], rows["rejects"] = report.output, report.rejects
        _print_counts(f"points ingest ({pcfg.format})", rows)

    run_guarded(body)
