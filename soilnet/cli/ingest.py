"""``soilnet ingest raster|climate|points``: bring files you already have into the cubes and the points table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from soilnet.cli.common import ConfigOpt, OverwriteOpt, SetOpt, configure, facts_table, results, run_guarded

if TYPE_CHECKING:
    from soilnet.config import SoilnetConfig
    from soilnet.data.ingest.config import ClimateIngestConfig, PointsIngestConfig, RasterIngestConfig

app = typer.Typer(
    name="ingest",
    help="Ingest GeoTIFF / COG rasters, NetCDF climate series and soil sample tables (local or s3://).",
    no_args_is_help=True,
)
#: What an ingest reports: a title and its counts, one row each.
Counts = tuple[str, dict[str, Any]]


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of names (None when not given)."""
    return text.split(",") if text else None


def _output(cfg: SoilnetConfig, given: str | None, part: str) -> str:
    """The output URL: as typed on the command line (the user's intent), else ``data.<part>``, which must lie
    under ``data.root`` or ``data.write_roots`` like every configured output."""
    return given or cfg.data.writable(cfg.data.url(part), f"data.{part}")


def _run_ingest(
    config: Path | None,
    set_: list[str] | None,
    section: str,
    given: dict[str, Any],
    work: Callable[[SoilnetConfig, Any], Counts],
) -> None:
    """Load the config, apply the options given on the command line to ``ingest.<section>``, run `work`
    with the config and that section, and print the counts it returns; user errors exit with status 2."""

    def body() -> None:
        cfg = configure(config, set_)
        section_cfg = getattr(cfg.ingest, section)
        options = {k: v for k, v in given.items() if v}
        if options:
            section_cfg = section_cfg.model_validate({**section_cfg.model_dump(), **options})
        title, rows = work(cfg, section_cfg)
        results.print(facts_table(title, rows))

    run_guarded(body)


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

    def work(cfg: SoilnetConfig, rcfg: RasterIngestConfig) -> Counts:
        target = _output(cfg, cube, "raster")
        grid = grid_from_sources(files, rcfg.epsg, rcfg.resolution, rcfg.bounds)
        bar = iter(progress(range(sum(1 for _ in grid.tiles(cfg.raster_layout.shard))), desc="shards"))
        report = ingest_rasters(
            files, target, grid, bands.split(","), rcfg, cfg.raster_layout,
            overwrite=overwrite, on_shard=lambda *_: next(bar, None),
        )  # fmt: skip
        return f"raster ingest -> {report.cube_url}", {
            "input files": report.sources,
            "grid": f"{grid.width} x {grid.height} px, {grid.crs}, {grid.res:g} m",
            "shards written": report.shards_written,
            "shards without data": report.shards_empty,
            "shards skipped (already done)": report.shards_skipped,
        }

    given = {"source_bands": _names(source_bands), "landsat_c2": landsat_c2, "resampling": resampling}
    _run_ingest(config, set_, "raster", given, work)


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

    def work(cfg: SoilnetConfig, ccfg: ClimateIngestConfig) -> Counts:
        report = ingest_climate(
            files,
            _output(cfg, cube, "climate"),
            ccfg,
            cfg.climate_layout,
            overwrite=overwrite,
        )
        return f"climate ingest -> {report.cube_url}", {
            "input files": report.files,
            "variables": ", ".join(report.variables),
            "months": f"{report.first_month} .. {report.last_month}",
            "blocks written": report.blocks_written,
            "blocks skipped (already done)": report.blocks_skipped,
        }

    _run_ingest(config, set_, "climate", {"variables": _names(variables)}, work)


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
    from soilnet.data.ingest.points import ingest_points, schema_for
    from soilnet.data.raster_cube import open_raster_cube

    def work(cfg: SoilnetConfig, pcfg: PointsIngestConfig) -> Counts:
        grid = open_raster_cube(cube).grid if cube else None
        if grid is not None and grid.epsg != pcfg.epsg:
            pcfg = pcfg.model_copy(update={"epsg": grid.epsg})
        report = ingest_points(
            file,
            _output(cfg, out, "points"),
            pcfg,
            grid=grid,
            overwrite=overwrite,
        )
        rows: dict[str, Any] = {"rows read": report.rows, "kept": report.kept}
        rows.update({f"rejected: {reason}": n for reason, n in sorted(report.rejected.items())})
        rows["targets"] = ", ".join(f"{t} <- {c}" for t, c in report.targets.items())
        rows["targets not in file"] = ", ".join(report.missing_targets) or "none"
        if report.all_zero_missing:
            zeroed = ", ".join(schema_for(pcfg).all_zero_is_missing)
            rows["rows all 0 -> missing"] = f"{report.all_zero_missing} ({zeroed})"
        rows["date"], rows["depth"] = report.date_source, report.depth_source
        rows["table"], rows["rejects"] = report.output, report.rejects
        return f"points ingest ({pcfg.format})", rows

    _run_ingest(config, set_, "points", {"format": fmt}, work)
