"""``soilnet map ...``: plan, run and publish a tiled map; feature-space maps of a region.

Every command reads the ``map`` section of a YAML config (or a YAML file that is only that
section); ``--set field=value`` overrides a field of the section (``model.bundle=...`` too).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from soilnet.cli.common import SectionConfigOpt, SetOpt, configure_section, facts_table, results, run_guarded

if TYPE_CHECKING:
    from soilnet.mapping.config import MapConfig

#: Where `benchmarks/scale.py` saves the rates it measured (relative to the repository root).
DEFAULT_RATES = Path("benchmarks/results/scale_rates.json")

app = typer.Typer(
    help="Continental maps: plan the tile grid, run tiled batch inference, publish COG + STAC + preview.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def load_map_config(path: Path, overrides: list[str] | None = None, log_level: str = "INFO") -> MapConfig:
    """The ``map`` section of a YAML file (or the whole file), with ``field=value`` overrides."""
    from soilnet.mapping.config import MapConfig

    return configure_section(path, "map", MapConfig, overrides, log_level)


@app.command("plan")
def plan(
    config: SectionConfigOpt,
    set_: SetOpt = None,
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs to estimate the run time for.")] = 8,
    rates: Annotated[
        Path, typer.Option("--rates", help="Rates measured by benchmarks/scale.py (JSON) to project wall time from.")
    ] = DEFAULT_RATES,
) -> None:
    """Show the tile grid over the region: tiles, area, input bytes, FLOPs, and the projected wall time and
    cost on N GPUs from measured rates (the GPU rate is assumed until measured; the table says which is which)."""
    from soilnet.mapping.job import prepare_map
    from soilnet.mapping.projection import load_rates, project, projection_facts

    def body() -> None:
        cfg = load_map_config(config, set_, "WARNING")
        plan = prepare_map(cfg, create=False).plan
        facts = plan.facts(gpus)
        if rates.exists():
            measured = load_rates(rates)
            args = (cfg.cpus_per_gpu, cfg.gpu_peak_tflops, cfg.gpu_peak_fraction, cfg.gpu_hour_usd)
            projection = project(plan, measured, gpus, *args)
            facts.update(projection_facts(projection, measured, cfg.gpu_peak_tflops, cfg.gpu_peak_fraction))
        else:
            facts["projection"] = f"no measured rates at {rates} (run python benchmarks/scale.py)"
        results.print(facts_table("map plan", facts))

    run_guarded(body)


@app.command("run")
def run(
    config: SectionConfigOpt,
    set_: SetOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing map cube.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Recompute every tile, changed or not.")] = False,
    publish: Annotated[bool, typer.Option("--publish/--no-publish", help="Write COGs, STAC and preview.")] = True,
) -> None:
    """Compute the missing or changed tiles of the map cube, then publish COGs, STAC items and a preview."""
    from soilnet.mapping.job import run_map
    from soilnet.mapping.map_cube import open_map_cube
    from soilnet.mapping.outputs import export_outputs
    from soilnet.mapping.reliability import aoa_fraction

    def body() -> None:
        cfg = load_map_config(config, set_)
        result = run_map(cfg, overwrite=overwrite, force=force)
        facts: dict[str, object] = {
            "map cube": result.map_url,
            "tiles computed": len(result.computed),
            "tiles unchanged": result.skipped,
            "time": f"{result.seconds:.1f} s",
        }
        share = aoa_fraction(open_map_cube(result.map_url))
        if share is not None:
            facts["aoa_fraction"] = f"{share:.3f}"
        if publish:
            outputs = export_outputs(cfg)
            facts.update({f"COG {c.layer}": c.url for c in outputs.cogs})
            facts.update({"STAC items": len(outputs.items), "preview": outputs.preview})
        results.print(facts_table("map run", facts))

    run_guarded(body)


@app.command("publish")
def publish(config: SectionConfigOpt, set_: SetOpt = None) -> None:
    """Write COGs, STAC items and the preview of an existing map cube (and log them to MLflow)."""
    from soilnet.mapping.outputs import export_outputs

    def body() -> None:
        outputs = export_outputs(load_map_config(config, set_))
        results.print(facts_table("map outputs", {Path(u).name: u for u in outputs.urls()}))

    run_guarded(body)


@app.command("features")
def features(
    config: SectionConfigOpt,
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

    def body() -> list[str]:
        cfg = load_map_config(config, set_)
        embeddings, valid = embed_region(cfg)
        maps = feature_maps(embeddings, valid, clusters)
        target = out or storage.join(cfg.out, "features")
        if cfg.write_roots and not out:  # a typed --out is the user's intent; the default follows map.out's roots
            target = confine_as_given(target, cfg.write_roots, "map.out")
        return write_feature_maps(maps, target)

    written = run_guarded(body)
    results.print(facts_table("feature-space maps", {Path(u).name: u for u in written}))
