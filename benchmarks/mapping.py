"""Tiled map inference against a naive per-pixel baseline, dense-mode FLOPs, and a Europe estimate.

Generates a demo region on local disk (raster cube with 32 px inner chunks in 128 px shards),
saves the tiny two-fold ViT ensemble of `tests.fixtures.tiny_models` (width 32, depth 2) as a model bundle, then:

  - tiled: the map job in-process (one core, one torch thread) at 240 m: each tile read once with
    its halo, windows cut in memory;
  - naive: one window read from the store per output pixel (what per-point code does), on a
    sample of pixels, extrapolated to the same area; the windows are then predicted in batches of
    the map job's ``batch_size`` (laid side by side, one `Ensemble.predict_tile` call per batch), so
    the speed-up is the I/O design alone; batching is a figure of its own (the same windows
    predicted one per call against batched).

Read amplification = bytes the store returned for the image / compressed bytes of the image
cube inside the mapped area (halo included in the numerator). FLOPs of the dense mode and of
per-window prediction are counted with FlopCounterMode at 240 m and 960 m for the tiny ViT and
the SoilNet recipe (ResNet-101 + GLAM + LSTM); the Europe estimate divides the SoilNet recipe's
counted FLOPs by the stated GPU throughput and checks the measured read rate keeps up.

    python benchmarks/mapping.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from zarr.storage import LocalStore

from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.raster_cube import RasterLayout, open_raster_cube
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.ensemble import Ensemble
from soilnet.mapping.job import prepare_map, run_map
from soilnet.mapping.model_source import load_ensemble
from soilnet.mapping.plan import flops_per_pixel
from soilnet.mapping.stages import ReadStage, tile_row
from soilnet.recipes.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from tests.fixtures.tiny_models import TINY_BANDS, TINY_VARIABLES, save_tiny_bundle, tiny_stats

EUROPE_KM2 = 10e6
GPU_TFLOPS = 20.0  # stated assumption: sustained fp32 TFLOP/s of one GPU on these models
IMAGE_BYTES = {"n": 0}


def _count_image_reads() -> None:
    """Make LocalStore count the bytes it returns for the image array."""
    original = LocalStore.get

    async def counting_get(self, key, prototype=None, byte_range=None):
        buf = await original(self, key, prototype, byte_range)
        if buf is not None and key.startswith("bands/"):
            IMAGE_BYTES["n"] += len(buf)
        return buf

    LocalStore.get = counting_get


def _cube_bytes(url: str) -> int:
    return sum(p.stat().st_size for p in Path(url, "bands").rglob("*") if p.is_file())


def _naive(cfg: MapConfig, model: Ensemble, n: int) -> tuple[float, float, float, int]:
    """Per output pixel with one window read per pixel: read seconds, batched and one-per-call predict seconds
    (batches of ``cfg.batch_size``; one-per-call on a tenth of the pixels), and store bytes."""
    raster = open_raster_cube(cfg.raster)
    climate = open_climate_cube(cfg.climate)
    rng = np.random.default_rng(0)
    stride, patch = round(cfg.resolution_m / raster.grid.res), model.patch
    out_w = raster.grid.width // stride
    pixels = rng.integers(0, out_w, size=(n, 2))
    idx, var_idx = raster.band_index(TINY_BANDS), [climate.variables.index(v) for v in TINY_VARIABLES]
    before, start = IMAGE_BYTES["n"], time.perf_counter()
    images, series = [], []
    for r, c in pixels:
        row0, col0 = r * stride + stride // 2 - patch // 2, c * stride + stride // 2 - patch // 2
        images.append(raster.read_window(row0, col0, patch, patch)[idx])
        x, y = raster.grid.x_coords(col0 + patch // 2, 1), raster.grid.y_coords(row0 + patch // 2, 1)
        end = np.datetime64(cfg.climate_end)
        series.append(climate.read_series(x, y, raster.grid.epsg, end, model.months)[:, :, var_idx])
    read_s, nbytes = time.perf_counter() - start, (IMAGE_BYTES["n"] - before) // n
    start = time.perf_counter()
    for i in range(0, n, cfg.batch_size):  # windows side by side, stride = patch: one batched call each
        part = slice(i, min(i + cfg.batch_size, n))
        k = part.stop - part.start
        mosaic = np.concatenate(images[part], axis=2)
        index = np.arange(k, dtype=np.int32)[None]
        model.predict_tile(mosaic, np.concatenate(series[part]), index, patch, "windows", cfg.batch_size)
    batched_s = time.perf_counter() - start
    single = max(1, n // 10)
    start = time.perf_counter()
    for image, one in zip(images[:single], series[:single], strict=True):
        model.predict_tile(image, one, np.zeros((1, 1), np.int32), patch, "windows", 1)
    return read_s / n, batched_s / n, (time.perf_counter() - start) / single, nbytes


def _read_rate(cfg: MapConfig) -> float:
    """Store bytes per second one core reads (tiles with halo, climate, hashing), without inference."""
    prepared = prepare_map(cfg, create=False)
    reader = ReadStage(prepared.spec)
    before, start = IMAGE_BYTES["n"], time.perf_counter()
    for tile in prepared.plan.tiles:
        reader(tile_row(tile))
    return (IMAGE_BYTES["n"] - before) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small region and fewer samples (under 2 minutes).")
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    torch.set_num_threads(1)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    _count_image_reads()
    size_km, tile_px, naive_n = (24, 64, 100) if args.quick else (48, 64, 300)
    with tempfile.TemporaryDirectory(prefix="soilnet-bench-map-") as tmp:
        demo = generate_demo_region(
            DemoConfig(width_km=size_km, height_km=size_km, n_points=50, seed=5),
            os.path.join(tmp, "demo"),
            RasterLayout(inner_chunk=32, shard=128),
        )
        source = ModelSourceConfig(bundle=save_tiny_bundle(os.path.join(tmp, "bundle"), width=32, depth=2))
        cfg = MapConfig(
            raster=demo.raster,
            climate=demo.climate,
            out=os.path.join(tmp, "map"),
            model=source,
            climate_end="2018-06",
            resolution_m=240,
            tile_px=tile_px,
            chunk_px=tile_px,
            batch_size=512,
            executor="local",
        )
        model = load_ensemble(source, device="cpu")
        IMAGE_BYTES["n"] = 0
        result = run_map(cfg)
        tiled_bytes = IMAGE_BYTES["n"]
        area_km2 = size_km**2
        rate = area_km2 / result.seconds
        amplification = tiled_bytes / _cube_bytes(demo.raster)
        read_s, batched_s, single_s, naive_bytes = _naive(cfg, model, naive_n)
        out_px = (open_raster_cube(demo.raster).grid.width // 8) ** 2
        naive_rate = area_km2 / ((read_s + batched_s) * out_px)
        naive_amp = naive_bytes * out_px / _cube_bytes(demo.raster)
        print(f"tiled map: {area_km2} km2 at 240 m in {result.seconds:.1f} s on 1 core: {rate:.2f} km2/s/core")
        print(
            f"naive per-pixel reads, predicted in batches of {cfg.batch_size}: {naive_rate:.2f} km2/s/core "
            f"(reading {read_s * 1e3:.2f} ms/px, predicting {batched_s * 1e3:.2f} ms/px), "
            f"read amplification {naive_amp:.1f}"
        )
        print(
            f"batching alone: the same windows predicted one per call take {single_s * 1e3:.2f} ms/px, "
            f"{single_s / batched_s:.1f}x the batched {batched_s * 1e3:.2f} ms/px"
        )
        print(f"tiled read amplification (halo included): {amplification:.2f}; speed-up {rate / naive_rate:.1f}x")
        read_rate = _read_rate(cfg)
        real = load_recipe(Path(__file__).resolve().parents[1] / "jobs/configs/recipes/soilnet.yaml")
        stats = tiny_stats().model_copy(
            update={"bands": [f"b{i}" for i in range(14)], "image_center": [0.0] * 14, "image_scale": [1.0] * 14,
                    "variables": [f"v{i}" for i in range(14)], "climate_mean": [0.0] * 14, "climate_std": [1.0] * 14}
        )  # fmt: skip
        recipes = {"tiny ViT": model, "SoilNet ResNet-101": Ensemble([real.build_model()], stats, patch=64, months=61)}
        europe_flops = None
        for name, ens in recipes.items():
            cell = 8 if name == "tiny ViT" else 32
            for stride, label in ((8, "240 m"), (32, "960 m")):
                if stride % cell:
                    continue
                windows, dense = flops_per_pixel(ens, stride, "windows"), flops_per_pixel(ens, stride, "dense")
                print(f"FLOPs per pixel, {name} at {label}: windows {windows:.3e}, dense {dense:.3e}, "
                      f"dense/windows {dense / windows:.3f}")  # fmt: skip
            europe_flops = flops_per_pixel(ens, 8, "windows") * EUROPE_KM2 * 1e6 / 240.0**2
            europe_name = name
        gpu_hours = europe_flops / (8 * GPU_TFLOPS * 1e12) / 3600
        europe_bytes = amplification * EUROPE_KM2 * 1e6 / 30.0**2 * 14 * 2 * 0.5  # ~2:1 zstd on int16 bands
        print(f"Europe ({EUROPE_KM2:.0e} km2) at 240 m with {europe_name}: {europe_flops:.2e} FLOPs -> "
              f"{gpu_hours:.1f} h on 8 GPUs at {GPU_TFLOPS:g} TFLOP/s each; reading {europe_bytes / 1e12:.1f} TB at "
              f"the measured {read_rate / 1e6:.0f} MB/s/core needs "
              f"{europe_bytes / read_rate / 3600 / max(gpu_hours, 1e-9):.0f} reader cores to keep up")  # fmt: skip
        print(f"MAPPING: {rate:.2f} km2/s/core, read amplification {amplification:.2f} (target: <=1.3), "
              f"{rate / naive_rate:.0f}x naive at equal batch, Europe 240 m on 8 GPUs ~{gpu_hours:.1f} h")  # fmt: skip


if __name__ == "__main__":
    main()
