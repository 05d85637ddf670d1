"""Soak of the map job: many tiles through the Ray Data pipeline with memory sampled as tiles finish.

Generates a demo region on local disk and maps it with the tiny ensemble of `tests.fixtures.tiny_models` on
local Ray (reader, predictor and writer actors, as in production). A sampler thread reads, twice a
second, the number of finished tiles (done markers) and the resident memory of the driver and every
process Ray started below it (`soak_streaming.process_tree_memory`: private ``RssAnon`` summed, the
object store's shared memory counted once). Growth is the least-squares slope of private memory plus
object store against tiles done, after the warm-up tiles (actors starting, model loading), per 100 tiles.

    python benchmarks/soak_mapping.py [--quick]

The last line holds the key figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from soak_streaming import process_tree_memory

from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.raster_cube import RasterLayout
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.job import run_map
from soilnet.mapping.manifest import markers_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from tests.fixtures.tiny_models import save_tiny_bundle

MIB = 2**20
#: Tiles finished before the slope is fitted (actor start-up, model load, first blocks in the store).
WARMUP_TILES = 10
#: Stated bound on steady growth of private memory + object store.
TARGET_MIB_PER_100_TILES = 20.0


class Sampler(threading.Thread):
    """Samples (seconds, tiles done, memory) every ``period`` seconds until stopped."""

    def __init__(self, out: str, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.markers, self.period = Path(markers_url(out)), period
        self.samples: list[dict[str, float]] = []
        self.halt = threading.Event()
        self.start_time = time.perf_counter()

    def sample(self) -> None:
        """Take one sample now."""
        tiles = len(list(self.markers.glob("*.json"))) if self.markers.exists() else 0
        memory = process_tree_memory(os.getpid())
        self.samples.append({"seconds": time.perf_counter() - self.start_time, "tiles": tiles, **memory})

    def run(self) -> None:
        while not self.halt.wait(self.period):
            self.sample()


def soak(root: str, size_km: float, tile_px: int) -> tuple[list[dict[str, float]], int]:
    """Map a generated region with Ray Data while sampling memory; returns the samples and the tile count."""
    import ray
    from ray.data import DataContext

    region = DemoConfig(width_km=size_km, height_km=size_km, n_points=50, seed=7)
    paths = generate_demo_region(region, root, RasterLayout(inner_chunk=32, shard=128))
    cfg = MapConfig(
        raster=paths.raster,
        climate=paths.climate,
        out=os.path.join(root, "map"),
        model=ModelSourceConfig(bundle=save_tiny_bundle(os.path.join(root, "bundle"))),
        climate_end="2018-06",
        resolution_m=120,
        tile_px=tile_px,
        chunk_px=tile_px,
        batch_size=256,
        executor="ray",
    )
    ray.init(address="local", num_cpus=2, object_store_memory=256 * MIB, include_dashboard=False, log_to_driver=False)
    DataContext.get_current().enable_progress_bars = False
    sampler = Sampler(cfg.out)
    sampler.start()
    try:
        result = run_map(cfg)
        sampler.halt.set()
        sampler.join()
        sampler.sample()  # every tile done, Ray still up
    finally:
        sampler.halt.set()
        ray.shutdown()
    print(f"{result.tiles} tiles of {tile_px} px at 120 m ({size_km:g} x {size_km:g} km) in {result.seconds:.0f} s")
    return sampler.samples, result.tiles


def per_tile_memory(samples: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Tiles done and the last memory sample (private + object store, MiB) taken at each count."""
    last: dict[int, float] = {}
    for s in samples:
        last[int(s["tiles"])] = s["private"] + s["shared"]
    tiles = np.array(sorted(last), dtype=np.float64)
    return tiles, np.array([last[int(t)] for t in tiles])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="About 49 tiles (under 2 minutes on 2 cores).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    size_km, tile_px = (12.0, 16) if args.quick else (36.0, 16)  # 49 tiles, 361 tiles
    with tempfile.TemporaryDirectory(prefix="soak-map-") as root:
        samples, total = soak(root, size_km, tile_px)
    tiles, memory = per_tile_memory(samples)
    for t in range(0, total + 1, 10):
        at = memory[tiles <= t]
        if at.size:
            print(f"{t:4d} tiles  private + object store {at[-1]:7.1f} MiB")
    steady = tiles > WARMUP_TILES
    if steady.sum() < 3:
        raise SystemExit(f"only {int(steady.sum())} samples after {WARMUP_TILES} warm-up tiles: map more tiles")
    growth = float(np.polyfit(tiles[steady], memory[steady], 1)[0]) * 100
    driver = [s["driver"] for s in samples]
    peak = max(s["private"] + s["shared"] for s in samples)
    print(
        f"{len(samples)} samples; after {WARMUP_TILES} warm-up tiles private + object store "
        f"{memory[steady][0]:.0f} -> {memory[-1]:.0f} MiB; driver VmRSS {driver[0]:.0f} -> {driver[-1]:.0f} MiB; "
        f"peak {peak:.0f} MiB over {max(s['processes'] for s in samples):.0f} processes"
    )
    print(f"SOAK_MAPPING: {growth:+.1f} MiB/100 tiles (target: < {TARGET_MIB_PER_100_TILES:g})")


if __name__ == "__main__":
    main()
