"""Raster ingest throughput against a plain ``rasterio.warp.reproject`` of the same files, same run.

Generates raw Landsat-like scenes (7 uint16 bands, UTM 32N, 30 m, deflate-tiled GeoTIFFs), then
  - plain: ``reproject`` of each whole file onto the whole EPSG:3035 grid into memory (float32);
  - ingest: ``ingest_rasters`` of the same files into a sharded, compressed int16 raster cube
    (scale/offset applied, shard by shard, resumable bookkeeping included).
Throughput is source megabytes (uncompressed pixels) per second. The last line is the ratio.

    python benchmarks/ingest_raster.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject

from soilnet.data.ingest.config import RasterIngestConfig
from soilnet.data.ingest.raster import grid_from_sources, ingest_rasters
from soilnet.data.raster_cube import RasterLayout

BANDS = [f"SR_B{i}" for i in range(1, 8)]


def write_scene(path: Path, size: int, offset_px: int, seed: int) -> None:
    """A smooth-plus-noise 7-band uint16 scene; scenes overlap by half (a real mosaic)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    data = np.empty((len(BANDS), size, size), dtype=np.uint16)
    for b in range(len(BANDS)):
        field = 9000 + 4000 * np.sin(6 * xx + b) * np.cos(5 * yy - b) + rng.normal(0, 300, (size, size))
        data[b] = np.clip(field, 1, 65535).astype(np.uint16)
    transform = Affine(30.0, 0, 420000.0 + 30.0 * offset_px, 0, -30.0, 5400000.0)
    profile = dict(
        driver="GTiff",
        count=len(BANDS),
        width=size,
        height=size,
        dtype="uint16",
        crs="EPSG:32632",
        transform=transform,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        nodata=0,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def plain_reproject(files: list[str], grid) -> float:
    """Seconds to warp every file onto the whole grid in memory."""
    start = time.perf_counter()
    for url in files:
        out = np.full((len(BANDS), grid.height, grid.width), np.nan, dtype=np.float32)
        with rasterio.open(url) as src:
            reproject(
                rasterio.band(src, list(range(1, len(BANDS) + 1))),
                out,
                dst_transform=grid.affine,
                dst_crs=grid.crs,
                dst_nodata=np.nan,
                resampling=Resampling.bilinear,
            )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small scenes (well under 2 minutes).")
    parser.add_argument("--workers", type=int, default=2, help="Ingest worker threads.")
    args = parser.parse_args()
    size, n_files = (1536, 2) if args.quick else (3072, 3)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n_files):
            path = Path(tmp) / f"scene_{i}.tif"
            write_scene(path, size, offset_px=i * size // 2, seed=i)
            files.append(str(path))
        source_mb = n_files * len(BANDS) * size * size * 2 / 2**20
        grid = grid_from_sources(files, 3035, 30.0)
        print(
            f"{n_files} scenes of {size} x {size} px x {len(BANDS)} bands uint16 ({source_mb:.0f} MB); "
            f"cube grid {grid.width} x {grid.height} px EPSG:3035"
        )

        plain_s = plain_reproject(files, grid)
        cfg = RasterIngestConfig(landsat_c2=True, qa_mask_bits=[], workers=args.workers)
        start = time.perf_counter()
        report = ingest_rasters(files, str(Path(tmp) / "cube.zarr"), grid, BANDS, cfg, RasterLayout())
        ingest_s = time.perf_counter() - start
        cube_mb = sum(p.stat().st_size for p in (Path(tmp) / "cube.zarr").rglob("*") if p.is_file()) / 2**20

    plain_rate, ingest_rate = source_mb / plain_s, source_mb / ingest_s
    print(f"plain reproject to memory : {plain_s:6.1f} s  {plain_rate:7.1f} MB/s")
    print(
        f"ingest to sharded cube    : {ingest_s:6.1f} s  {ingest_rate:7.1f} MB/s  "
        f"({report.shards_written} shards, {cube_mb:.0f} MB on disk, {args.workers} workers)"
    )
    print(f"INGEST_RASTER: {ingest_rate / plain_rate:.2f}x (target: >= 0.5x of plain reproject to memory)")


if __name__ == "__main__":
    main()
