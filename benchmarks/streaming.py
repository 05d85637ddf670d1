"""Data path at continental density: soilnet's readers and the peers a user would pick, same pixels, same run.

Data: the generated continental sample set (`soilnet.data.continental_sample`): the Europe grid
(EPSG:3035, 30 m, 165,000 x 151,000 px), labelled points at LUCAS density (about one per 200 km2 of
land, clustered), pixels that compress like Landsat-8 SR (`soilnet.data.landsat_texture`) written
only in the 512 px shards that the points' 64 px windows touch; every other shard is absent.
``--quick`` places the points in a 160 x 160 km window of the same grid (same density), the full
run in 480 x 480 km. Every store is on local disk: an S3 server in this process would add its own
CPU time to the readers'.

Metrics, the same for every path:

- amplification = decoded (uncompressed) chunk bytes fetched / bytes of the windows delivered
  (int16, 14 x 64 x 64 per window). A chunk or tile counts whole each time it is decoded: zarr's
  inner chunks; GeoTIFF tiles (torchgeo opens the file per query, so no tile outlives a sample).
- requests = GET requests per window: shard-index and range reads of the object store; a GeoTIFF
  tile or a per-point file counts one each (their header reads are not counted, which favours them).
- CPU-s per sample = process CPU time of the reading (every thread: decoders, the I/O event loop) /
  samples delivered; samples/s per core = its inverse. Setup (indexes, CSV loading) is not timed.
- limit = the decode-only rate: the same compressed chunks already in memory, decompressed and cut
  into windows, per core. Each path is a fraction of the limit of its access pattern: labelled
  points as random 64 px windows over the cube's 64 px chunks (about 4 chunks each), SSL windows as
  whole shards decoded once with K windows cut from each.

Paths (labelled points in one global shuffle, cold readers, batches of 64 where a path batches):
torchgeo, reference, naive zarr, soilnet cube windows (`ShardWindowReader`, requests coalesced per
shard), soilnet point store epoch 1 (`soilnet.data.point_store`, built once per points table from
the cube, its own row: the cache filled store shard by store shard, one range request per 256
points, then the epoch's batches cut from it), soilnet cache epoch 2+ (memory, normalised in place,
no storage bytes), and SSL windows (`soilnet.data.ssl_windows`, K = 64 per shard, normalised in place).

The GPU feed table divides each recipe's sample rate on one H100 (40 % of 989 TFLOP/s over the
training FLOPs per sample, `soilnet.recipes.gpu_feed`) by each path's samples/s per core.

The last line: ``limit`` = SSL path / its decode-only rate; ``torchgeo``, ``reference`` = point store
epoch 1 per core / the peer per core; ``amplification``, ``requests`` = point store epoch 1;
``compress`` = blosc-zstd 3 byte-shuffle ratio of the generated pixels.

    python benchmarks/streaming.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pandas as pd
import torch
import zarr
from peers import (
    TIFF_TILE,
    ReferenceLoader,
    point_queries,
    tiles_touched,
    torchgeo_dataset,
    write_reference,
    write_tiled_geotiff,
)
from zarr.storage import WrapperStore

from soilnet.data.bands import BAND_NAMES, CLIMATE_VARIABLES
from soilnet.data.continental_sample import ContinentalConfig, inland_window, lucas_points, write_sparse_cube
from soilnet.data.landsat_texture import compression_ratio, landsat_raw
from soilnet.data.point_store import COALESCE_BYTES, open_point_store, write_point_store
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.shard_reader import ShardWindowReader
from soilnet.data.ssl_windows import ShardWindowCutter
from soilnet.recipes.gpu_feed import Feed, training_flops
from soilnet.recipes.recipe import load_recipe

PATCH = 64
BATCH = 64
SSL_PER_SHARD = 64
#: Passes over the points (or shards) per path, each with a cold reader, so small sets still time well.
REPEATS = 3
MONTHS = 61
WINDOW_BYTES = len(BAND_NAMES) * PATCH * PATCH * 2
LIMIT_LABELLED = "decode-only: cube chunks in memory"
RECIPES = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "recipes"
#: Recipe stages whose H100 feed the table shows: (recipe, stage).
FEEDS = (("soilnet", "finetune"), ("ssl-soilnet", "finetune"), ("ssl-soilnet", "pretrain"), ("dino", "pretrain"))


@dataclass
class Row:
    """One path's figures (see the module docstring)."""

    name: str
    samples: int
    cpu_s: float
    decoded: float
    requests: float
    pattern: str = "labelled"

    @property
    def per_core(self) -> float:
        return self.samples / self.cpu_s

    @property
    def amplification(self) -> float:
        return self.decoded / (self.samples * WINDOW_BYTES)

    @property
    def requests_per_window(self) -> float:
        return self.requests / self.samples


def timed(name: str, run: Callable[[], tuple[int, float, float]], pattern: str = "labelled") -> Row:
    """Run a path ``REPEATS`` times (each a cold pass) and sum; ``run`` returns (samples, decoded bytes, requests)."""
    row = Row(name, 0, 0.0, 0.0, 0.0, pattern)
    for _ in range(REPEATS):
        start = time.process_time()
        samples, decoded, requests = run()
        row.cpu_s += time.process_time() - start
        row.samples, row.decoded, row.requests = row.samples + samples, row.decoded + decoded, row.requests + requests
    return row


class CountingStore(WrapperStore):
    """A zarr store wrapper that counts the GET requests it serves (naive zarr path)."""

    requests = 0
    _lock = threading.Lock()

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        buf = await self._store.get(key, prototype, byte_range)
        with CountingStore._lock:
            CountingStore.requests += buf is not None
        return buf


def chunks_per_window(cube: Any, points: pd.DataFrame) -> int:
    """Inner chunks the points' windows touch, counted per window (what per-window zarr reads decode)."""
    inner = cube.layout.inner_chunk
    total = 0
    for x, y in zip(points["x"], points["y"], strict=True):
        r0, c0 = cube.window_at(x, y, PATCH)
        total += ((r0 + PATCH - 1) // inner - r0 // inner + 1) * ((c0 + PATCH - 1) // inner - c0 // inner + 1)
    return total


def labelled_paths(root: Path, cube: Any, points: pd.DataFrame, store_url: str, stats: tuple) -> list[Row]:
    """Every labelled-point path over the same points in the same shuffled order; each pass a cold reader."""
    rows_px, cols_px = cube.grid.rowcol(points["x"].to_numpy(), points["y"].to_numpy())
    r0, c0 = rows_px - PATCH // 2, cols_px - PATCH // 2
    batches = [np.arange(i, min(i + BATCH, len(points))) for i in range(0, len(points), BATCH)]
    n = len(points)
    out: list[Row] = []

    dataset = torchgeo_dataset(root / "torchgeo")
    queries = list(point_queries(cube, points, PATCH))

    def torchgeo() -> tuple[int, float, float]:
        for q in queries:
            dataset[q]["image"]
        tiles = tiles_touched(cube, points, PATCH)
        return n, tiles * TIFF_TILE * TIFF_TILE * WINDOW_BYTES / (PATCH * PATCH), tiles

    out.append(timed("torchgeo RasterDataset, 512 px GeoTIFF", torchgeo))

    loader = ReferenceLoader(root / "reference", list(CLIMATE_VARIABLES))
    ids = points["id"].tolist()
    out.append(timed("reference: GeoTIFF per point (image)", lambda: (len([loader.image(i) for i in ids]), 0.0, 0.0)))
    out.append(timed("reference + climate CSV series", lambda: (len([loader.sample(i) for i in ids]), 0.0, 0.0)))
    for row in out[-2:]:
        row.decoded, row.requests = row.samples * WINDOW_BYTES, row.samples

    def naive() -> tuple[int, float, float]:
        CountingStore.requests = 0
        bands = zarr.open_group(CountingStore(cube.group.store), mode="r")["bands"]
        for r, c in zip(r0.tolist(), c0.tolist(), strict=True):
            np.asarray(bands[:, r : r + PATCH, c : c + PATCH])
        return n, chunks_per_window(cube, points) * WINDOW_BYTES, CountingStore.requests  # chunks = window size

    out.append(timed("naive zarr, one read per window", naive))

    def cube_windows() -> tuple[int, float, float]:
        reader = ShardWindowReader(cube.url, cube.bands, "bands", coalesce_bytes=COALESCE_BYTES)
        for b in batches:
            reader.read_windows(r0[b], c0[b], PATCH)
        return n, reader.decoded_bytes, reader.requests

    out.append(timed("soilnet cube windows (coalesced per shard)", cube_windows))

    fetcher = ShardWindowReader(cube.url, cube.bands, "bands")
    blobs = [fetcher.fetch_chunks(fetcher.chunks_of(r0[b], c0[b], PATCH)) for b in batches]

    def cube_limit() -> tuple[int, float, float]:
        decoder = ShardWindowReader(cube.url, cube.bands, "bands")
        for b, blob in zip(batches, blobs, strict=True):
            decoder.cut_windows(blob, r0[b], c0[b], PATCH)
        return n, decoder.decoded_bytes, 0.0

    out.append(timed(LIMIT_LABELLED, cube_limit))

    gain, bias = stats
    buffer = np.empty((BATCH, len(BAND_NAMES), PATCH, PATCH), dtype=np.float32)
    shuffled = np.random.default_rng(1).permutation(n)
    cache: list[np.ndarray] = []

    def serve() -> tuple[int, float, float]:
        """One epoch of normalised batches in a global shuffle, cut from the cache in place."""
        for i in range(0, n, BATCH):
            idx = shuffled[i : i + BATCH]
            view = buffer[: len(idx)]
            np.multiply(cache[-1][idx], gain, out=view, casting="unsafe")
            view += bias
        return n, 0.0, 0.0

    stores = iter([open_point_store(store_url) for _ in range(REPEATS)])  # opened once per job: setup

    def store_epoch1() -> tuple[int, float, float]:
        store = next(stores)
        cache.append(store.read_all())  # the cache filled shard by shard: one range request per store shard
        serve()
        return n, store.reader.decoded_bytes, store.reader.requests

    out.append(timed("soilnet point store, epoch 1", store_epoch1))
    out.append(timed("soilnet cache, epoch 2+ (normalised)", serve))
    return out


def ssl_paths(cube: Any, shards: list[tuple[int, int]], stats_raw: tuple) -> list[Row]:
    """SSL windows: K per shard from whole decoded shards, normalised in place, and their decode-only limit."""
    center, spread = stats_raw
    rng = np.random.default_rng(2)
    corners = [ShardWindowCutter(cube, PATCH).corners(sy, sx, SSL_PER_SHARD, rng) for sy, sx in shards]
    buffer = np.empty((SSL_PER_SHARD, len(BAND_NAMES), PATCH, PATCH), dtype=np.float32)

    def ssl() -> tuple[int, float, float]:
        cutter = ShardWindowCutter(cube, PATCH, center, spread)
        for (sy, sx), (rows, cols) in zip(shards, corners, strict=True):
            cutter.cut(sy, sx, rows, cols, out=buffer)
        return len(shards) * SSL_PER_SHARD, cutter.reader.decoded_bytes, cutter.reader.requests

    row = timed("soilnet SSL windows, 64 per shard", ssl, "ssl")
    shard_dir = Path(cube.url) / "bands" / "c" / "0"
    blobs = [(shard_dir / str(sy) / str(sx)).read_bytes() for sy, sx in shards]
    raw_out = np.empty((SSL_PER_SHARD, len(BAND_NAMES), PATCH, PATCH), dtype=np.int16)
    size = cube.layout.shard

    def decode_only() -> tuple[int, float, float]:
        decoder = ShardWindowReader(cube.url, cube.bands, "bands")
        for (sy, sx), blob, (rows, cols) in zip(shards, blobs, corners, strict=True):
            raw = decoder.decode_shard(blob)
            for k, (r, c) in enumerate(zip((rows - sy * size).tolist(), (cols - sx * size).tolist(), strict=True)):
                raw_out[k] = raw[:, r : r + PATCH, c : c + PATCH]
        return len(shards) * SSL_PER_SHARD, decoder.decoded_bytes, 0.0

    return [row, timed("decode-only: whole shards in memory", decode_only, "ssl")]


def h100_feeds() -> dict[str, Feed]:
    """The training FLOPs per sample and H100 sample rate of each recipe stage in `FEEDS`."""
    feeds = {}
    for name, stage in FEEDS:
        recipe = load_recipe(RECIPES / f"{name}.yaml")
        window = recipe.data.n_bands * recipe.data.patch_px**2
        feed = Feed(name, stage, training_flops(recipe, stage), window)
        feeds[f"{name} {stage}"] = feed
        print(
            f"{name} {stage}: {feed.flops_per_sample / 1e9:.1f} GFLOP per training sample -> one H100 at "
            f"40 % of 989 TFLOP/s eats {feed.samples_per_s:,.0f} samples/s"
        )
    return feeds


def print_table(rows: list[Row], limits: dict[str, float], feeds: dict[str, Feed]) -> None:
    """The path table and the reader cores one H100 needs per recipe stage."""
    head = (
        f"{'path':46s} {'samples/s/core':>14s} {'CPU-s/sample':>12s} {'of limit':>8s} {'amplif.':>7s} {'req/win':>7s}"
    )
    print(head + "".join(f" {'cores/H100 ' + r:>26s}" for r in feeds))
    for row in rows:
        cores = "".join(f" {feed.cores(row.per_core):26.1f}" for feed in feeds.values())
        print(
            f"{row.name:46s} {row.per_core:14.0f} {1 / row.per_core:12.2e} {row.per_core / limits[row.pattern]:8.2f} "
            f"{row.amplification:7.2f} {row.requests_per_window:7.3f}" + cores
        )


def prepare(cfg: ContinentalConfig, root: Path) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """The sample set and its peers' files under ``root``, generated unless ``root`` holds them for ``cfg``."""
    marker = root / "sample-set.json"
    key = cfg.model_dump_json()
    if marker.exists() and json.loads(marker.read_text())["config"] == key:
        saved = json.loads(marker.read_text())
        print(f"reusing the sample set in {root}")
        return pd.read_parquet(root / "points.parquet"), [tuple(s) for s in saved["shards"]]
    t = time.perf_counter()
    points = lucas_points(cfg)
    points = points.iloc[np.random.default_rng(0).permutation(len(points))].reset_index(drop=True)
    shards = write_sparse_cube(cfg, points, str(root / "raster.zarr"), PATCH, overwrite=True)
    cube = open_raster_cube(str(root / "raster.zarr"))
    climate = np.random.default_rng(3).normal(size=(len(points), MONTHS, len(CLIMATE_VARIABLES))).astype(np.float32)
    write_tiled_geotiff(cube, shards, root / "torchgeo" / "europe.tif")
    write_reference(cube, points, climate, list(CLIMATE_VARIABLES), root / "reference")
    points.to_parquet(root / "points.parquet")
    marker.write_text(json.dumps({"config": key, "shards": shards}))
    print(f"generated the sample set and its peers' files in {time.perf_counter() - t:.0f} s")
    return points, shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Points in a 160 km window (same density; < 2 min).")
    parser.add_argument("--data", type=Path, help="Keep the generated sample set here and reuse it on later runs.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    numcodecs.blosc.set_nthreads(1)
    torch.set_num_threads(1)
    base = ContinentalConfig()
    side = 5334 if args.quick else 16_000
    cfg = base.model_copy(update={"window": inland_window(base, side, side)})
    feeds = h100_feeds()
    with tempfile.TemporaryDirectory(prefix="soilnet-streaming-") as tmp:
        root = args.data or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        points, shards = prepare(cfg, root)
        cube = open_raster_cube(str(root / "raster.zarr"))
        area = side * side * 9e-4
        print(
            f"grid {base.width_px} x {base.height_px} px (EPSG:3035, 30 m); {len(points)} points in {area:.0f} km2 "
            f"({area / max(len(points), 1):.0f} km2 per point incl. sea); {len(shards)} of "
            f"{-(-base.width_px // 512) * -(-base.height_px // 512)} shards written"
        )
        sample = np.concatenate([landsat_raw(sy * 512, sx * 512, 512, 512, cfg.seed) for sy, sx in shards[:2]], axis=1)
        compress = compression_ratio(sample)
        stored = sum(f.stat().st_size for f in (root / "raster.zarr" / "bands" / "c").rglob("*") if f.is_file())
        print(
            f"compression: {compress:.2f}x blosc-zstd 3 byte shuffle (real Landsat-8 SR: ~2.0x); "
            f"{len(shards) * 512 * 512 * WINDOW_BYTES / PATCH**2 / stored:.2f}x as stored (bitshuffle)"
        )

        def build_store() -> tuple[int, float, float]:
            write_point_store(root / "points.zarr", cube, points, PATCH, overwrite=True)
            return len(points), 0.0, 0.0

        build = timed("point store build (once per points table)", build_store)
        center = np.array([cube.offset[i] + 1000 * cube.scale[i] for i in range(len(BAND_NAMES))])
        spread = np.array([1000 * s for s in cube.scale])
        gain = (cube.scale / spread).astype(np.float32)[:, None, None]
        bias = ((cube.offset - center) / spread).astype(np.float32)[:, None, None]
        rows = labelled_paths(root, cube, points, str(root / "points.zarr"), (gain, bias))
        rows.insert(len(rows) - 2, build)
        rows += ssl_paths(cube, shards, (center, spread))
        by = {r.name: r for r in rows}
        cube_row = by["soilnet cube windows (coalesced per shard)"]  # the build reads its windows the same way
        build.decoded = cube_row.amplification * WINDOW_BYTES * build.samples
        build.requests = cube_row.requests_per_window * build.samples
        limits = {"labelled": by[LIMIT_LABELLED].per_core, "ssl": rows[-1].per_core}
        print_table(rows, limits, feeds)
        store_row = by["soilnet point store, epoch 1"]
        print(
            f"STREAMING: limit={rows[-2].per_core / rows[-1].per_core:.2f} "
            f"torchgeo={store_row.per_core / by['torchgeo RasterDataset, 512 px GeoTIFF'].per_core:.1f}x "
            f"reference={store_row.per_core / by['reference: GeoTIFF per point (image)'].per_core:.1f}x "
            f"amplification={store_row.amplification:.2f} requests={store_row.requests_per_window:.3f} "
            f"compress={compress:.2f} "
            "(target: limit>=0.5 torchgeo>=10 reference>=5 amplification<=2 requests<=1.5)"
        )


if __name__ == "__main__":
    main()
