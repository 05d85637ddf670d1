"""The demo flow that ``make demo`` runs: generate, validate and preview the demo region."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from soilnet import storage
from soilnet.config import SoilnetConfig
from soilnet.data.climate_cube import validate_climate_cube
from soilnet.data.demo_region import DemoPaths, generate_demo_region
from soilnet.data.points import read_points
from soilnet.data.preview import write_demo_previews
from soilnet.data.raster_cube import validate_raster_cube

log = logging.getLogger(__name__)


@dataclass
class DemoReport:
    """What the demo flow produced and how long each stage took."""

    paths: DemoPaths
    previews: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)


def run_demo(cfg: SoilnetConfig, overwrite: bool = False) -> DemoReport:
    """Run the demo flow end to end on the configured workspace."""
    root = storage.resolve(cfg.data.root).url
    paths = DemoPaths(root)
    report = DemoReport(paths)
    t0 = time.perf_counter()
    generate_demo_region(cfg.demo, root, cfg.raster_layout, overwrite=overwrite)
    report.timings_s["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    raster = validate_raster_cube(paths.raster, required_bands=["SR_B4", "ndvi", "elevation"], epsg=cfg.demo.epsg)
    climate = validate_climate_cube(paths.climate, min_months=61)
    truth = validate_raster_cube(paths.truth, required_bands=["soc_g_kg"])
    points, _ = read_points(paths.points, targets=["soc_g_kg"])
    report.timings_s["validate"] = time.perf_counter() - t0
    report.facts = {
        "raster_px": f"{raster.grid.width} x {raster.grid.height} at {raster.grid.res:g} m",
        "bands": len(raster.band_names),
        "climate": f"{len(climate.variables)} variables x {len(climate.times)} months, "
        f"{climate.grid.width} x {climate.grid.height} cells",
        "points": len(points),
        "soc_g_kg": f"mean {points['soc_g_kg'].mean():.1f}, range {points['soc_g_kg'].min():.1f}"
        f"-{points['soc_g_kg'].max():.1f}",
    }
    t0 = time.perf_counter()
    report.previews = write_demo_previews(raster, truth, points, storage.join(root, "previews"))
    report.timings_s["previews"] = time.perf_counter() - t0
    return report
