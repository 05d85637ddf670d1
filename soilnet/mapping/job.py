"""The map job: plan the tiles, then read -> predict -> write them with Ray Data (or in-process).

Resumable and incremental: the driver reads every tile's done marker; readers hash each
tile's inputs and drop tiles whose marker holds the same input and model hashes, so a rerun
after a kill computes only the missing tiles and a nightly run only the changed ones.
Inference is deterministic per tile (fixed threads, deterministic algorithms, each tile
predicted on its own), so a resumed map is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass

from soilnet import storage
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.region import Region, load_region
from soilnet.data.zarr_group import mark_complete
from soilnet.mapping.config import MapConfig
from soilnet.mapping.ensemble import Ensemble
from soilnet.mapping.manifest import clear_markers, read_markers
from soilnet.mapping.map_cube import ensure_map_cube, open_map_cube
from soilnet.mapping.model_source import load_ensemble
from soilnet.mapping.plan import MapPlan, make_plan
from soilnet.mapping.stages import MapJobSpec, PredictStage, ReadStage, WriteStage, tile_row
from soilnet.mapping.tiling import MapGrid
from soilnet.progress import progress

log = logging.getLogger(__name__)


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
    """A planned map job: the model, the plan and the stages' spec."""

    model: Ensemble
    plan: MapPlan
    spec: MapJobSpec


def prepare_map(cfg: MapConfig, overwrite: bool = False, force: bool = False, create: bool = True) -> PreparedMap:
    """Open the inputs, load the model, plan the tiles and (with ``create``) open or create the map cube."""
    raster = open_raster_cube(cfg.raster)
    climate = open_climate_cube(cfg.climate)
    region: Region | None = load_region(cfg.region) if cfg.region else None
    model = load_ensemble(cfg.model, device="cpu")
    grid = MapGrid.build(raster.grid, cfg.resolution_m, model.patch, cfg.tile_px)
    plan = make_plan(grid, region, raster, climate, model, cfg.mode, cfg.gpu_tflops)
    settings = map_settings(cfg, grid)
    model_hash = hashlib.sha256((model.content_hash() + json.dumps(settings, sort_keys=True)).encode()).hexdigest()
    url = map_cube_url(cfg.out)
    markers = {}
    if create:
        if overwrite:
            clear_markers(cfg.out)
        ensure_map_cube(url, grid.output, cfg.targets, cfg.chunk_px, settings, overwrite)
        markers = read_markers(cfg.out)
    band_index = raster.band_index(model.bands)
    spec = MapJobSpec(
        cfg=cfg,
        grid=grid,
        shapes=region.projected(grid.output.epsg) if region is not None else None,
        bands=model.bands,
        variables=model.variables,
        months=model.months,
        scale=raster.scale[band_index],
        offset=raster.offset[band_index],
        nodata=raster.nodata,
        map_url=url,
        model_hash=model_hash,
        markers=markers,
        force=force,
    )
    return PreparedMap(model, plan, spec)


@dataclass
class MapRunResult:
    """What a map run did."""

    map_url: str
    tiles: int
    computed: list[str]
    seconds: float

    @property
    def skipped(self) -> int:
        """Tiles left as they were (done and unchanged)."""
        return self.tiles - len(self.computed)


def _run_local(spec: MapJobSpec, rows: list[dict]) -> list[str]:
    reader, predictor, writer = ReadStage(spec), PredictStage(spec), WriteStage(spec)
    done = []
    for row in progress(rows, "map tiles"):
        for inputs in reader(row):
            done.append(writer(predictor(inputs))["name"])
    return done


def _run_ray(spec: MapJobSpec, rows: list[dict]) -> list[str]:
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS", "local"))
    cfg = spec.cfg
    gpus = cfg.gpus_per_predictor
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    actor = {"num_cpus": cfg.cpus_per_actor, "fn_constructor_args": (spec,)}
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    pool = ray.data.ActorPoolStrategy
    ds = ds.flat_map(ReadStage, compute=pool(size=cfg.readers), **actor)
    ds = ds.map(PredictStage, compute=pool(size=cfg.predictors), num_gpus=gpus, **actor)
    ds = ds.map(WriteStage, compute=pool(size=1), **actor)
    return [str(r["name"]) for r in progress(ds.iter_rows(), "map tiles", total=len(rows))]


def run_map(cfg: MapConfig, overwrite: bool = False, force: bool = False) -> MapRunResult:
    """Compute every missing or changed tile of the map cube (all tiles with ``force``), then mark it complete."""
    start = time.perf_counter()
    prepared = prepare_map(cfg, overwrite=overwrite, force=force)
    rows = [tile_row(t) for t in prepared.plan.tiles]
    runner = _run_local if cfg.executor == "local" else _run_ray
    computed = runner(prepared.spec, rows)
    mark_complete(open_map_cube(prepared.spec.map_url, writable=True).group)
    result = MapRunResult(prepared.spec.map_url, len(rows), sorted(computed), time.perf_counter() - start)
    log.info(
        "map %s: %d tiles computed, %d unchanged, %.1f s", result.map_url, len(computed), result.skipped, result.seconds
    )
    return result
