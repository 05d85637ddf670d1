"""One night: new inputs, the incremental map, the comparison and gate, an atomic release, the report.

1. With ``acquire`` configured, only the periods that are new upstream are exported from Earth Engine
   and ingested (`soilnet.nightly.inputs`).
2. ``climate_end: latest`` is resolved and the map job runs incrementally: its change detection
   (markers, shard digests, model and config hashes; `soilnet.mapping.job.run_map`) decides which
   tiles to recompute. Nothing recomputed, nothing pending and the same month and model as the
   pointed release: nothing is published, and the report says so.
3. The recomputed (and earlier refused) tiles are compared with the pointed release; the gate refuses
   a night whose changes or input-missing share are out of bounds (`soilnet.nightly.compare`).
4. The map is published under ``<releases>/<version>/``, validated, recorded, and only then is the
   ``latest`` pointer moved; old releases beyond ``keep`` are deleted (`soilnet.nightly.releases`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from soilnet import storage
from soilnet.mapping.config import MapConfig, resolve_climate_end
from soilnet.mapping.map_cube import map_cube_url, open_map_cube
from soilnet.nightly.compare import Comparison, compare_with_release, gate_reason
from soilnet.nightly.config import NightlyConfig
from soilnet.nightly.releases import ReleaseStore, new_version

log = logging.getLogger(__name__)


class NightRefusedError(RuntimeError):
    """The gate refused tonight's map; ``report`` holds the figures."""

    def __init__(self, reason: str, report: NightReport) -> None:
        super().__init__(f"night refused: {reason}")
        self.report = report


@dataclass
class NightReport:
    """What a night did: its status, the figures of the gate, what it published."""

    status: str  # published | nothing-new | refused
    reason: str
    climate_end: str
    model: dict[str, Any]
    tiles: int = 0
    recomputed: list[str] = field(default_factory=list)
    compared: int = 0
    changed_pct: float = 0.0
    missing_pct: float = 0.0
    previous_missing_pct: float | None = None
    previous: str | None = None
    version: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The night in one line."""
        if self.status == "published":
            return (
                f"published {self.version} ({self.climate_end}): {len(self.recomputed)} of {self.tiles} tiles "
                f"recomputed, {self.changed_pct:.2f} % of pixels changed, {self.missing_pct:.2f} % input missing"
            )
        return f"{self.status}: {self.reason}"


def model_identity(cfg: MapConfig, tracking_uri: str | None) -> dict[str, Any]:
    """The model source of the map and, for a registry alias, the version it resolves to now."""
    source = cfg.model.bundle or ",".join(cfg.model.weights)
    identity: dict[str, Any] = {"source": source}
    if source.startswith("models:/"):
        from mlflow import MlflowClient

        name, alias = source.removeprefix("models:/").split("@")
        version = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(name, alias)
        identity["version"] = str(version.version)
    return identity


def validate_release(folder: str, width: int, height: int, layers: list[str]) -> None:
    """Every layer's mosaic opens as a raster of the map's size (tile COGs and STAC items were validated as written)."""
    import rasterio

    for layer in layers:
        url = storage.join(folder, "cog", f"{layer}.vrt")
        with storage.rasterio_env(url), rasterio.open(storage.gdal_path(url)) as src:
            if (src.width, src.height) != (width, height):
                raise ValueError(f"{url}: {src.width} x {src.height} px, the map is {width} x {height}")


def _timed(seconds: dict[str, float], stage: str, start: float) -> float:
    now = time.perf_counter()
    seconds[stage] = round(now - start, 2)
    return now


def run_night(cfg: NightlyConfig, *, run_id: str | None = None, accept_change: bool = False) -> NightReport:
    """Run one night: its report, or `NightRefusedError` (latest untouched) or the error that stopped it."""
    from soilnet.mapping.job import run_map
    from soilnet.mapping.outputs import export_outputs
    from soilnet.nightly.inputs import refresh_inputs

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    store = ReleaseStore(cfg.releases)
    pointer = store.latest()
    previous = store.record(pointer["version"]) if pointer else None
    map_cfg = cfg.map
    if previous is not None and cfg.acquire is not None:  # the newest cubes an earlier night ingested
        map_cfg = map_cfg.model_copy(update={k: previous["inputs"][k] for k in ("raster", "climate")})
    if cfg.acquire is not None:
        map_cfg = refresh_inputs(cfg.acquire, map_cfg)
    start = _timed(seconds, "inputs", start)
    map_cfg = resolve_climate_end(map_cfg)
    if run_id:
        map_cfg = map_cfg.model_copy(update={"mlflow_run_id": run_id, "mlflow_tracking_uri": cfg.tracking_uri})
    model = model_identity(map_cfg, cfg.tracking_uri)
    result = run_map(map_cfg)
    start = _timed(seconds, "map", start)
    report = NightReport("", "", map_cfg.climate_end, model, result.tiles, result.computed, seconds=seconds)
    report.previous = pointer["version"] if pointer else None
    pending = store.pending()
    unpublished = None if pending is None else pending | set(result.computed)
    if (
        previous is not None
        and unpublished == set()
        and previous.get("climate_end") == map_cfg.climate_end
        and previous.get("model") == model
    ):
        report.status = "nothing-new"
        report.reason = f"nothing new since {pointer['version']} ({map_cfg.climate_end}): nothing published"
        return report
    cube = open_map_cube(map_cube_url(map_cfg.out))
    comparison: Comparison = compare_with_release(
        cube,
        map_cfg.tile_px,
        unpublished,
        store.folder(pointer["version"]) if pointer else None,
        previous.get("tiles", {}) if previous else {},
        cfg.gate.change_threshold,
    )
    start = _timed(seconds, "compare", start)
    report.compared = len(comparison.compared)
    report.changed_pct, report.missing_pct = comparison.changed_pct, comparison.missing_pct
    report.previous_missing_pct = previous.get("missing_pct") if previous else None
    same_model = previous is not None and previous.get("model", {}).get("source") == model["source"]
    reason = gate_reason(comparison, report.previous_missing_pct, same_model and not accept_change, cfg.gate)
    if reason:
        store.set_pending(unpublished)
        report.status, report.reason = "refused", reason
        raise NightRefusedError(reason, report)
    version = new_version()
    folder = store.folder(version)
    export_outputs(map_cfg, folder)
    validate_release(folder, cube.grid.width, cube.grid.height, cube.layers)
    store.write_record(
        version,
        {
            "version": version,
            "climate_end": map_cfg.climate_end,
            "model": model,
            "inputs": {"raster": map_cfg.raster, "climate": map_cfg.climate, "region": map_cfg.region},
            "recomputed": result.computed,
            "changed_pct": comparison.changed_pct,
            "missing_pct": comparison.missing_pct,
            "top_changed_tiles": comparison.top_tiles(),
            "tiles": comparison.to_record(),
            "mlflow_run_id": run_id,
        },
    )
    store.point_to(version)  # the last step readers can see
    store.set_pending(set())
    store.prune(cfg.keep)
    _timed(seconds, "publish", start)
    report.status, report.version = "published", version
    report.reason = report.line()
    return report
