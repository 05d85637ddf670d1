"""``soilnet map ...``: plan, run and publish a tiled map; feature-space maps of a region.

Every command reads the ``map`` section of a YAML config (or a YAML file that is only that
section); ``--set field=value`` overrides a field of the section (``model.bundle=...`` too).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from soilnet.config import ConfigError, load_section
from soilnet.data.earth_engine.region import RegionError
from soilnet.data.zarr_group import CubeValidationError
from soilnet.logs import setup_logging
from soilnet.mapping.config import MapConfig
from soilnet.mapping.stac import StacValidationError
from soilnet.storage import StorageError

app = typer.Typer(
    help="Continental maps: plan the tile grid, run tiled batch inference, publish COG + STAC + preview.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
results = Console(soft_wrap=True)
log = logging.getLogger("soilnet.cli.map")

#: Failures reported as one red line (exit status 2) instead of a traceback.
ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    CubeValidationError,
    RegionError,
    StacValidationError,
    StorageError,
    FileNotFoundError,
    ValueError,
)

ConfigArg = Annotated[Path, typer.Option("--config", "-c", help="YAML config with a `map` section.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a field: field=value.")]


def load_map_config(path: Path, overrides: list[str] | None = None) -> MapConfig:
    """The ``map`` section of a YAML file (or the whole file), with ``field=value`` overrides."""
    return load_section(path, "map", MapConfig, overrides or [])


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ERRORS as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc


def _table(title: str, facts: dict[str, object]) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in facts.items():
        table.add_row(key, str(value))
    return table


@app.command("plan")
def plan(
    config: ConfigArg,
    set_: SetOpt = None,
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs to estimate the run time for.")] = 8,
) -> None:
    """Show the tile grid over the region: tiles, area, input bytes, FLOPs and time on N GPUs."""
    from soilnet.mapping.job import prepare_map

    setup_logging("WARNING")
    cfg = _guard(load_map_config, config, set_)
    prepared = _guard(prepare_map, cfg, create=False)
    results.print(_table("map plan", prepared.plan.facts(gpus)))


@app.command("run")
def run(
    config: ConfigArg,
    set_: SetOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing map cube.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Recompute every tile, changed or not.")] = False,
    publish: Annotated[bool, typer.Option("--publish/--no-publish", help="Write COGs, STAC and preview.")] = True,
) -> None:
    """Compute the missing or changed tiles of the map cube, then publish COGs, STAC items and a preview."""
    from soilnet.mapping.job import run_map
    from soilnet.mapping.outputs import export_outputs

    setup_logging("INFO")
    cfg = _guard(load_map_config, config, set_)
    result = _guard(run_map, cfg, overwrite=overwrite, force=force)
    facts: dict[str, object] = {
        "map cube": result.map_url,
        "tiles computed": len(result.computed),
        "tiles unchanged": result.skipped,
        "time": f"{result.seconds:.1f} s",
    }
    if publish:
        outputs = _guard(export_outputs, cfg)
        facts.update({f"COG {c.layer}": c.url for c in outputs.cogs})
        facts.update({"STAC items": len(outputs.items), "preview": outputs.preview})
    results.print(_table("map run", facts))


@app.command("publish")
def publish(config: ConfigArg, set_: SetOpt = None) -> None:
    """Write COGs, STAC items and the preview of an existing map cube (and log them to MLflow)."""
    from soilnet.mapping.outputs import export_outputs

    setup_logging("INFO")
    cfg = _guard(load_map_config, config, set_)
    outputs = _guard(export_outputs, cfg)
    results.print(_table("map outputs", {Path(u).name: u for u in outputs.urls()}))


@app.command("features")
def features(
    config: ConfigArg,
    set_: SetOpt = None,
    clusters: Annotated[int, typer.Option("--clusters", "-k", min=2, help="K-means clusters.")] = 8,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Folder for the PNGs (default <out>/features).")
    ] = None,
) -> None:
    """Feature-space maps of the region: K-means clusters and PCA-to-RGB of the encoder's embeddings."""
    from soilnet import storage
    from soilnet.mapping.features import embed_region, feature_maps, write_feature_maps
    from soilnet.paths import confine_as_given

    setup_logging("INFO")
    cfg = _guard(load_map_config, config, set_)
    embeddings, valid = _guard(embed_region, cfg)
    maps = _guard(feature_maps, embeddings, valid, clusters)
    target = out or storage.join(cfg.out, "features")
    if cfg.write_roots:
        target = _guard(confine_as_given, target, cfg.write_roots, "--out")
    written = write_feature_maps(maps, target)
    results.print(_table("feature-space maps", {Path(u).name: u for u in written}))
