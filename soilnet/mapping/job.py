"""The map job: select the tiles, then read -> predict -> write them with Ray Data (or in-process).

Resumable and incremental: the driver decides tile row by tile row, from done markers, shard digests
and the model and config hashes (`soilnet.mapping.changes`), which tiles to compute, so a rerun
after a kill computes only the missing tiles and a nightly run only the changed ones, reading no
pixel of the others (and starting no pipeline when nothing changed). The driver holds one small row
per tile to compute (never a pixel array) and the names of the computed tiles.
Inference is deterministic per tile (fixed threads, deterministic algorithms, each tile
predicted on its own), so a resumed map is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from soilnet import storage
from soilnet.data.climate_cube import ClimateCube, open_climate_cube
from soilnet.data.raster_cube import RasterCube, open_raster_cube
from soilnet.data.region import Region, load_region, touched_tile_mask
from soilnet.data.zarr_group import mark_complete
from soilnet.logs import quiet_ray_data
from soilnet.mapping.changes import (
    InputDigests,
    SelectionSpec,
    TileChange,
    TileKeys,
    TileSelector,
    config_hash,
    tile_rows,
)
from soilnet.mapping.config import MapConfig, resolve_climate_end
from soilnet.mapping.lease import MapLease
from soilnet.mapping.ledger import LedgerSummary, RemoteLedger
from soilnet.mapping.manifest import clear_markers, write_manifest
from soilnet.mapping.map_cube import ensure_map_cube, open_map_cube
from soilnet.mapping.model_card import ModelCard, read_model_card, resolve_registry
from soilnet.mapping.stages import MapJobSpec, PredictStage, ReadStage, Row, WriteStage, change_row
from soilnet.mapping.tiling import MapGrid
from soilnet.progress import progress

if TYPE_CHECKING:
    from soilnet.mapping.ensemble import Ensemble
    from soilnet.mapping.plan import MapPlan

log = logging.getLogger(__name__)

#: Most Ray Data blocks the tiles to compute are cut into (one tile per block below that).
MAX_BLOCKS = 1024


def map_cube_url(out: str) -> str:
    """The map cube under a map job's output folder."""
    return storage.join(out, "map.zarr")


def map_settings(cfg: MapConfig, grid: MapGrid) -> dict[str, object]:
    """The settings that define a map's values besides inputs and weights (kept in the cube)."""
    return {
        "resolution_m": grid.output.res,
        "stride": grid.stride,
        "patch": grid.patch,
        "tile_px": cfg.tile_px,
        "mode": cfg.mode,
        "batch_size": cfg.batch_size,
        "climate_end": cfg.climate_end,
    }


@dataclass
class PreparedMap:
    """A map job ready to run: the opened inputs, the model's card and the stages' spec.

    The model itself is loaded only when asked for (`model`, `plan`), so a running job's driver never
    imports torch nor holds weights: the predictor actors load them.
    """

    raster: RasterCube
    climate: ClimateCube
    region: Region | None
    card: ModelCard
    spec: MapJobSpec

    @functools.cached_property
    def model(self) -> Ensemble:
        """The model, loaded on the CPU."""
        from soilnet.mapping.model_source import load_ensemble

        return load_ensemble(self.spec.cfg.model, device="cpu", targets=self.spec.cfg.targets)

    @functools.cached_property
    def plan(self) -> MapPlan:
        """The map's plan: tiles, area, bytes, FLOPs (counted on the loaded model)."""
        from soilnet.mapping.plan import make_plan

        cfg = self.spec.cfg
        sustained = cfg.gpu_peak_tflops * cfg.gpu_peak_fraction
        return make_plan(self.spec.grid, self.region, self.raster, self.climate, self.model, cfg.mode, sustained)


def prepare_map(cfg: MapConfig, overwrite: bool = False, force: bool = False, create: bool = True) -> PreparedMap:
    """Open the inputs, read the model's card, hash config and (with ``create``) open or create the map cube."""
    raster = open_raster_cube(cfg.raster)
    climate = open_climate_cube(cfg.climate)
    cfg = resolve_registry(resolve_climate_end(cfg, climate))
    region: Region | None = load_region(cfg.region) if cfg.region else None
    card = read_model_card(cfg.model, targets=cfg.targets)
    grid = MapGrid.build(raster.grid, cfg.resolution_m, card.patch, cfg.tile_px)
    shapes = region.projected(grid.output.epsg) if region is not None else None
    settings = map_settings(cfg, grid)
    url = map_cube_url(cfg.out)
    if create:
        if overwrite:
            clear_markers(cfg.out)
        ensure_map_cube(
            url, grid.output, cfg.targets, cfg.chunk_px, settings, overwrite, card.classes, card.extra_layers
        )
    touched = touched_tile_mask(grid.output, grid.tile_px, shapes)
    if not touched.any():
        raise ValueError(f"the region {region.source if region else ''} does not overlap the raster cube {raster.url}")
    selection = SelectionSpec(
        out=cfg.out,
        grid=grid,
        touched=touched,
        model_hash=card.content_hash,
        config_hash=config_hash(settings, shapes, raster, climate),
        force=force,
        trust_markers=not cfg.incremental,
    )
    band_index = raster.band_index(card.bands)
    spec = MapJobSpec(
        cfg=cfg,
        grid=grid,
        shapes=shapes,
        bands=card.bands,
        variables=card.variables,
        months=card.months,
        scale=raster.scale[band_index],
        offset=raster.offset[band_index],
        nodata=raster.nodata,
        map_url=url,
        selection=selection,
    )
    return PreparedMap(raster, climate, region, card, spec)


def _selector(prepared: PreparedMap) -> TileSelector:
    spec = prepared.spec
    digests = InputDigests.load(prepared.raster, prepared.climate)
    return TileSelector(spec.selection, TileKeys(spec.grid, digests, prepared.climate))


def changed_tiles(cfg: MapConfig, force: bool = False) -> Iterator[TileChange]:
    """The tiles a run of ``cfg`` would compute now and why, from metadata only (markers, digests, hashes).

    Tiles whose cubes carry no digests come back with reason ``unknown`` (a run reads and hashes them).
    """
    prepared = prepare_map(cfg, force=force, create=False)
    selector = _selector(prepared)
    for row in progress(range(tile_rows(prepared.spec.selection)), "tile rows checked"):
        yield from selector.changes(row)


@dataclass
class MapRunResult:
    """What a map run did."""

    map_url: str
    tiles: int
    computed: list[str]
    seconds: float
    #: tiles predicted more than once (their first try was lost with a node or a worker)
    redone: list[str] = dataclasses.field(default_factory=list)
    #: completed tile writes (one per computed tile) and repeated writes skipped (the tile's marker was this run's)
    writes: int = 0
    rewrites_skipped: int = 0

    @property
    def skipped(self) -> int:
        """Tiles left as they were (done and unchanged)."""
        return self.tiles - len(self.computed)


def _run_local(spec: MapJobSpec, rows: list[Row]) -> tuple[list[str], LedgerSummary]:
    reader, predictor, writer = ReadStage(spec), PredictStage(spec), WriteStage(spec)
    done = []
    for row in progress(rows, "map tiles"):
        for inputs in reader(row):
            done.append(writer(predictor(inputs))["name"])
    return done, LedgerSummary([], len(done), 0)  # one process: nothing is ever redone


def _run_ray(spec: MapJobSpec, rows: list[Row]) -> tuple[list[str], LedgerSummary]:
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS", "local"))
    quiet_ray_data()  # the "map tiles" bar is the stage's progress
    cfg = spec.cfg
    gpus = cfg.gpus_per_predictor
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    ledger = RemoteLedger.start()  # counts the tiles redone after a lost node
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
    pool = ray.data.ActorPoolStrategy
    cpus = cfg.cpus_per_actor
    ds = ds.flat_map(ReadStage, compute=pool(size=cfg.readers), num_cpus=cpus, fn_constructor_args=(spec,))
    predictors = pool(size=cfg.predictors)
    ds = ds.map(PredictStage, compute=predictors, num_gpus=gpus, num_cpus=cpus, fn_constructor_args=(spec, ledger))
    ds = ds.map(WriteStage, compute=pool(size=1), num_cpus=cpus, fn_constructor_args=(spec, ledger))
    done = [str(r["name"]) for r in progress(ds.iter_rows(), "map tiles", total=len(rows))]
    summary = ledger.summary()
    if summary.redone or summary.rewrites_skipped:
        log.warning(
            "map: %d tiles redone after lost workers or nodes (%s), %d repeated writes skipped",
            len(summary.redone),
            ", ".join(summary.redone[:10]) + (" ..." if len(summary.redone) > 10 else ""),
            summary.rewrites_skipped,
        )
    return done, summary


def run_map(cfg: MapConfig, overwrite: bool = False, force: bool = False) -> MapRunResult:
    """Compute every missing or changed tile of the map cube (all tiles with ``force``), then mark it complete."""
    start = time.perf_counter()
    with MapLease(cfg.out, cfg.lease_ttl_s, cfg.lease_wait_s) as lease:
        prepared = prepare_map(cfg, overwrite=overwrite, force=force)
        spec = dataclasses.replace(prepared.spec, run_id=lease.run_id)
        selector = _selector(prepared)
        rows = [change_row(c) for r in range(tile_rows(spec.selection)) for c in selector.changes(r)]
        runner = _run_local if cfg.executor == "local" else _run_ray
        computed, again = runner(spec, rows) if rows else ([], LedgerSummary([], 0, 0))
        mark_complete(open_map_cube(spec.map_url, writable=True).group)
    tiles = int(spec.selection.touched.sum())
    seconds = time.perf_counter() - start
    result = MapRunResult(
        spec.map_url, tiles, sorted(computed), seconds, again.redone, again.writes, again.rewrites_skipped
    )
    write_manifest(
        cfg.out,
        {
            "run_id": spec.run_id,
            "model_hash": spec.selection.model_hash,
            "config_hash": spec.selection.config_hash,
            "tiles": tiles,
            "computed": len(computed),
            "redone": len(result.redone),
            "writes": result.writes,
            "rewrites_skipped": result.rewrites_skipped,
            "seconds": round(result.seconds, 3),
        },
    )
    log.info(
        "map %s: %d tiles computed (%d redone), %d unchanged, %.1f s",
        result.map_url,
        len(computed),
        len(result.redone),
        result.skipped,
        result.seconds,
    )
    return result
