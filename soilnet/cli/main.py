"""The ``soilnet`` typer application: global options, error handling and the data commands."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from soilnet import storage
from soilnet.config import DEFAULT_CONFIG, ConfigError, SoilnetConfig, dump_config, load_config
from soilnet.data.climate_cube import validate_climate_cube
from soilnet.data.points import PointsTableError, read_points
from soilnet.data.raster_cube import validate_raster_cube
from soilnet.data.zarr_group import CubeExistsError, CubeValidationError
from soilnet.logs import setup_logging
from soilnet.paths import PathEscapeError
from soilnet.storage import StorageError

app = typer.Typer(
    name="soilnet",
    help="Continental soil-property mapping: data, pretraining, fine-tuning, evaluation, maps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
results = Console(soft_wrap=True)
log = logging.getLogger("soilnet.cli")

#: Errors that are the user's input, reported as one clear message without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    CubeValidationError,
    CubeExistsError,
    PathEscapeError,
    PointsTableError,
    StorageError,
    OSError,  # a missing file, a full disk, a refused permission: FileNotFoundError and kin
    ValueError,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config (default: jobs/configs/demo.yaml).")
]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a field: section.field=value.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing cubes and tables.")]
DataOnlyOpt = Annotated[bool, typer.Option("--data-only", help="Only generate, validate and preview the region.")]

F = TypeVar("F", bound=Callable[..., object])


def configure(config: Path | None, overrides: list[str] | None, extra: list[str] | None = None) -> SoilnetConfig:
    """Load the config (file, then overrides) and set up logging from it."""
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    cfg = load_config(path, [*(overrides or []), *(extra or [])])
    setup_logging(cfg.log_level)
    return cfg


def run_guarded(fn: Callable[[], object]) -> object:
    """Run a command body; user errors become one red line and exit status 2."""
    try:
        return fn()
    except USER_ERRORS as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc


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
    url: Annotated[str, typer.Argument(help="URL of the cube or table.")],
    bands: Annotated[list[str] | None, typer.Option("--band", help="A band that must be present.")] = None,
) -> None:
    """Check that a cube or points table follows soilnet's data contracts."""
    setup_logging("WARNING")

    def body() -> None:
        if kind == "raster":
            cube = validate_raster_cube(url, bands or [])
            facts = f"{len(cube.band_names)} bands, {cube.grid.width} x {cube.grid.height} px, {cube.grid.crs}"
        elif kind == "climate":
            cc = validate_climate_cube(url, bands or [])
            facts = f"{len(cc.variables)} variables, {len(cc.times)} months, {cc.grid.crs}"
        elif kind == "points":
            df, epsg = read_points(url, bands or [])
            facts = f"{len(df)} points, x/y in EPSG:{epsg}"
        else:
            raise ValueError(f"unknown kind {kind!r}: expected raster, climate or points")
        results.print(f"[green]valid[/] {kind} {url}: {facts}")

    run_guarded(body)


@app.command("config")
def show_config(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective configuration (file + overrides) as YAML."""
    run_guarded(lambda: sys.stdout.write(dump_config(configure(config, set_))))


@app.command("demo")
def demo(config: ConfigOpt = None, set_: SetOpt = None, data_only: DataOnlyOpt = False) -> None:
    """Run the whole flow on the generated demo region (what `make demo` runs).

    Demo region -> SSL pretraining -> fine-tuning with spatial CV -> baselines -> comparison table ->
    model registered -> map of the region, scored against the true SOC map.
    """

    def body() -> None:
        cfg = configure(config, set_)
        if data_only:
            from soilnet.demo import run_demo

            report = run_demo(cfg, overwrite=True)
            results.print(_facts_table("soilnet demo data", report.facts, report.timings_s, report.previews))
            return
        from soilnet.demo_flow import run_full_demo

        full = run_full_demo(cfg)
        data = full.data
        results.print(_facts_table("demo region", data.facts, data.timings_s, data.previews))
        results.print(full.comparison)
        promo = full.promotion
        verdict = "now champion" if promo.promoted else f"champion stays version {promo.previous_version}"
        score = f"{promo.metric} {promo.candidate:.3f}"
        results.print(f"registered {promo.model} version {promo.version} ({score}): {verdict}")
        m = full.map
        err = ", ".join(f"{k} {v:.3f}" for k, v in m.error.items())
        results.print(
            f"map ({m.tiles} tiles, {m.seconds:.0f} s) against the true SOC map over {m.cells_scored} cells: {err}"
        )
        for cog in m.outputs.cogs:
            results.print(f"COG: {cog.url}")
        results.print(f"preview: {m.outputs.preview}")
        results.print(_facts_table("timings", {}, full.timings_s, []))
        results.print(f"open the runs in MLflow: [bold]{full.ui_command}[/]")

    run_guarded(body)


def _facts_table(title: str, facts: dict[str, object], timings: dict[str, float], paths: list[str]) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in facts.items():
        table.add_row(key, str(value))
    for stage, seconds in timings.items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    for path in paths:
        table.add_row("file", path)
    return table


def main() -> None:
    """Console-script entry point."""
    from soilnet.cli.registry import register_all

    register_all(app)
    app()
