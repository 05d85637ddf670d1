"""`soilnet query` against reading each point's window naively, on scattered points of a generated demo region.

Generates a demo region (12 x 12 km at 30 m with --quick, else 30 x 30 km), saves a two-fold bundle of tiny
seeded INR models (recipe miso-tiny over 5 demo bands: timing only, the skill does not matter) and draws
10,000 points uniformly over the region. Two ways to predict them:

- query: `soilnet.mapping.query.predict_points`, what `soilnet query --points` runs: points grouped by
  window (32 px windows at stride 16), each tile of windows read as one block, every window's points
  predicted in one pass of each fold model;
- naive: for each point, read the 32 px window centred on it (`RasterCube.read_window_at`) and predict it
  at the centre (`ModelBundle.predict`, 64 windows a batch); the climate series of all points are read in
  one call (in the naive path's favour). With --quick the naive path runs on the first 1,000 points.

Rates are points per second of process CPU time (every thread: zarr's reads, torch), single-threaded
torch, so a loaded machine does not distort the ratio; wall times are printed too. The last line is
``QUERY: points_per_s=N Rx naive at D points per window (target: >= 5x)``. The ratio is mostly D: grouping
saves one window read and one forward pass per extra point in a window, so on sparse points (D near 1) the
two paths cost about the same; 10,000 points on the 12 km --quick region are dense (D about 16), on the 30 km
region less so.

    python benchmarks/query.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pyproj import Transformer

from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.raster_cube import RasterLayout, open_raster_cube
from soilnet.mapping.query import predict_points
from soilnet.recipes.bundle import load_bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from tests.fixtures.tiny_models import save_tiny_inr_bundle

TARGET_RATIO = 5.0
N_POINTS = 10_000
CLIMATE_END = "2018-06"


def timed(fn):
    """(result, process CPU seconds, wall seconds) of ``fn()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def naive(bundle, raster, climate, lon: np.ndarray, lat: np.ndarray, batch: int = 64) -> np.ndarray:
    """Each point's centred window read on its own and predicted at its centre."""
    grid = raster.grid
    x, y = Transformer.from_crs(4326, grid.epsg, always_xy=True).transform(lon, lat)
    index = raster.band_index(bundle.meta.bands)
    variables = [climate.variables.index(v) for v in bundle.meta.climate_variables]
    series = climate.read_series(x, y, grid.epsg, CLIMATE_END, bundle.meta.months)[:, :, variables]
    out = []
    for start in range(0, len(x), batch):
        part = slice(start, start + batch)
        windows = np.stack(
            [
                raster.read_window_at(xi, yi, bundle.meta.patch_px)[index]
                for xi, yi in zip(x[part], y[part], strict=True)
            ]
        )
        out.append(bundle.predict(windows, series[part])[0])
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 km region, naive path on 1,000 points")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    size_km = 12 if args.quick else 30
    with tempfile.TemporaryDirectory(prefix="soilnet-query-bench-") as folder:
        demo, _, gen_wall = timed(
            lambda: generate_demo_region(
                DemoConfig(width_km=size_km, height_km=size_km, n_points=100),
                folder,
                RasterLayout(inner_chunk=64, shard=512),
            )
        )
        print(f"demo region {size_km} x {size_km} km generated in {gen_wall:.0f} s wall")
        bundle = load_bundle(save_tiny_inr_bundle(str(Path(folder) / "bundle")))
        raster, climate = open_raster_cube(demo.raster), open_climate_cube(demo.climate)
        grid = raster.grid
        a, _, c, _, e, f = grid.transform
        rng = np.random.default_rng(0)
        x = c + a * rng.uniform(0, grid.width, N_POINTS)
        y = f + e * rng.uniform(0, grid.height, N_POINTS)
        lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(x, y)
        (mean, _, windows), q_cpu, q_wall = timed(
            lambda: predict_points(bundle, raster, climate, lon, lat, CLIMATE_END)
        )
        n_naive = 1_000 if args.quick else N_POINTS
        _, n_cpu, n_wall = timed(lambda: naive(bundle, raster, climate, lon[:n_naive], lat[:n_naive]))
    assert np.isfinite(mean).all()
    query_rate, naive_rate = N_POINTS / q_cpu, n_naive / n_cpu
    print(f"query: {N_POINTS} points, {len(windows.origins)} windows, {q_cpu:.1f} s CPU ({q_wall:.1f} s wall)")
    print(f"naive: {n_naive} points, {n_naive} windows, {n_cpu:.1f} s CPU ({n_wall:.1f} s wall)")
    density = N_POINTS / len(windows.origins)
    print(
        f"QUERY: points_per_s={query_rate:.0f} {query_rate / naive_rate:.1f}x naive at {density:.1f} points per "
        f"window (target: >= {TARGET_RATIO:g}x)"
    )


if __name__ == "__main__":
    main()
