"""The ``soilnet`` typer application: the root commands (demo data, validate, config, demo) and every area's."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from soilnet.cli.acquire import app as acquire_app
from soilnet.cli.common import (
    DEBUG_ENV,
    ConfigOpt,
    OverwriteOpt,
    SetOpt,
    configure,
    facts_table,
    results,
    run_guarded,
)
from soilnet.cli.experiment import experiment
from soilnet.cli.ingest import app as ingest_app
from soilnet.cli.map import app as map_app
from soilnet.cli.models import app as models_app
from soilnet.cli.nightly import app as nightly_app
from soilnet.cli.query import query
from soilnet.cli.serve import serve
from soilnet.cli.spectra import app as spectra_app
from soilnet.cli.submit import app as submit_app
from soilnet.cli.tracking import app as tracking_app
from soilnet.cli.train import app as train_app

app = typer.Typer(
    name="soilnet",
    help="Continental soil-property mapping: data, pretraining, fine-tuning, evaluation, maps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(acquire_app, name="acquire", help="Export Landsat, TerraClimate and WorldCover from Earth Engine.")
app.add_typer(ingest_app, name="ingest", help="Ingest GeoTIFF / NetCDF / CSV files into cubes and tables.")
app.add_typer(map_app, name="map", help="Plan and run continental maps; publish COG, STAC and previews.")
app.add_typer(models_app, name="models", help="Inspect model recipes.")
app.add_typer(nightly_app, name="nightly", help="Nightly regeneration: incremental map, gated release, rollback.")
app.add_typer(spectra_app, name="spectra", help="Soil spectra: library, VAE, NIR->MIR conversion, property models.")
app.add_typer(submit_app)
app.add_typer(tracking_app, name="tracking", help="Deliver MLflow tracking calls spooled during an outage.")
app.add_typer(train_app)
app.command("serve")(serve)
app.command("query")(query)
app.command("experiment")(experiment)


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback under an error line.")] = False,
) -> None:
    """Continental soil-property mapping: data, pretraining, fine-tuning, evaluation, maps."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


DataOnlyOpt = Annotated[bool, typer.Option("--data-only", help="Only generate, validate and preview the region.")]


@app.command("demo-data")
def demo_data(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Workspace URL (local folder or s3://).")] = None,
    size_km: Annotated[float | None, typer.Option(help="Square region side in km.")] = None,
    resolution_m: Annotated[float | None, typer.Option(help="Pixel size in metres.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    n_points: Annotated[int | None, typer.Option(help="Number of labelled sample points.")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Generate the demo region (raster cube, climate cube, true SOC map, points) into a workspace."""
    from soilnet import storage
    from soilnet.data.demo_region import generate_demo_region

    extra = [f"data.root={out}"] if out else []
    if size_km is not None:
        extra += [f"demo.width_km={size_km}", f"demo.height_km={size_km}"]
    extra += [
        f"demo.{k}={v}"
        for k, v in (("resolution_m", resolution_m), ("seed", seed), ("n_points", n_points))
        if v is not None
    ]

    def body() -> None:
        cfg = configure(config, set_, extra)
        with storage.writing(f"cannot write the demo region to {cfg.data.root}"):
            paths = generate_demo_region(cfg.demo, cfg.data.root, cfg.raster_layout, overwrite=overwrite)
        results.print(f"demo region written to [bold]{paths.root}[/]")

    run_guarded(body)


@app.command("validate")
def validate(
    kind: Annotated[str, typer.Argument(help="raster | climate | points")],
    url: Annotated[
        str | None, typer.Argument(help="URL of the cube or table (default: data.<kind> of the config).")
    ] = None,
    bands: Annotated[
        list[str] | None, typer.Option("--band", help="A band (variable, target column) that must be present.")
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check that a cube or points table follows soilnet's data contracts."""
    from soilnet.data.climate_cube import validate_climate_cube
    from soilnet.data.points import read_points
    from soilnet.data.raster_cube import validate_raster_cube

    def body() -> None:
        if kind not in ("raster", "climate", "points"):
            raise ValueError(f"unknown kind {kind!r}: expected raster, climate or points")
        cfg = configure(config, ["log_level=WARNING", *(set_ or [])])
        where = url or cfg.data.url(kind)
        if kind == "raster":
            cube = validate_raster_cube(where, bands or [])
            facts = f"{len(cube.band_names)} bands, {cube.grid.width} x {cube.grid.height} px, {cube.grid.crs}"
        elif kind == "climate":
            cc = validate_climate_cube(where, bands or [])
            facts = f"{len(cc.variables)} variables, {len(cc.times)} months, {cc.grid.crs}"
        else:
            df, epsg = read_points(where, bands or [])
            facts = f"{len(df)} points, x/y in EPSG:{epsg}"
        results.print(f"[green]valid[/] {kind} {where}: {facts}")

    run_guarded(body)


@app.command("config")
def show_config(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective configuration (file + overrides) as YAML."""
    from soilnet.config import dump_config

    run_guarded(lambda: sys.stdout.write(dump_config(configure(config, set_))))


def _scores(scores: dict[str, float]) -> str:
    """``name value, ...`` of a map's scores."""
    return ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


@app.command("demo")
def demo(config: ConfigOpt = None, set_: SetOpt = None, data_only: DataOnlyOpt = False) -> None:
    """Run the whole flow on the generated demo region (what `make demo` runs).

    Demo region -> SSL pretraining -> fine-tuning with spatial CV -> baselines -> comparison table ->
    model registered -> map of the region, scored against the true SOC map.
    """

    def body() -> None:
        cfg = configure(config, set_)
        if data_only:
            from soilnet.demo.data_stage import run_demo

            report = run_demo(cfg, overwrite=True)
            results.print(facts_table("soilnet demo data", report.facts, report.timings_s, report.previews))
            return
        from soilnet.demo.full_run import run_full_demo

        full = run_full_demo(cfg)
        data = full.data
        results.print(facts_table("demo region", data.facts, data.timings_s, data.previews))
        results.print(full.comparison, markup=False, highlight=False)  # CLASSIFY[<target>] is not markup
        promo = full.promotion
        verdict = "now champion" if promo.promoted else f"champion stays version {promo.previous_version}"
        score = f"{promo.metric} {promo.candidate:.3f}"
        results.print(f"registered {promo.model} version {promo.version} ({score}): {verdict}")
        m = full.map
        err = _scores(m.error)
        results.print(
            f"map ({m.tiles} tiles, {m.seconds:.0f} s) against the true SOC map over {m.cells_scored} cells: {err}"
        )
        for target, (scores, cells) in m.further.items():
            results.print(f"map {target} against its true map over {cells} cells: " + _scores(scores))
        if m.aoa_fraction is not None:
            results.print(f"map aoa_fraction={m.aoa_fraction:.3f} (share of mapped pixels inside the AOA)")
        for cog in m.outputs.cogs:
            results.print(f"COG: {cog.url}")
        results.print(f"preview: {m.outputs.preview}")
        results.print(full.spectra.comparison, markup=False, highlight=False)
        results.print(facts_table("timings", {}, full.timings_s))
        results.print(f"open the runs in MLflow: [bold]{full.ui_command}[/]")
        results.print(f"open the map in a browser: [bold]{full.serve_command}[/]")

    run_guarded(body)


def main() -> None:
    """Console-script entry point."""
    app()
