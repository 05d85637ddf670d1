"""Training-sample streaming from a cube on a local S3 endpoint against per-sample window reads.

Starts a moto S3 server on 127.0.0.1, writes a generated demo region into it (raster cube with
64 px inner chunks in 512 px shards, climate cube), draws unlabelled pretraining locations, then:

  - naive: one zarr window read per sample (xarray-style ``bands[:, y0:y1, x0:x1]`` through
    fsspec), as the reference code reads one file per point; images only, while the other paths
    also read the 61-month climate series, so the ratio is conservative;
  - reader: `SampleReader` in-process on shard-ordered batches (chunk-aware, concurrent ranges);
  - pipeline: the Ray Data stream (`build_dataset`) consumed by a loop over ``iter_torch_batches``;
  - sparse: `SampleReader` on labelled points in a global shuffle (no chunk sharing possible).

Read amplification = bytes the store returned for image reads / bytes of int16 windows delivered.
The last line holds the key figures.

    python benchmarks/streaming.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
import time
from typing import Any

import numpy as np
import zarr
from zarr.storage import WrapperStore

from soilnet.data.bands import BAND_NAMES
from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.folds import FoldConfig
from soilnet.data.locations import labelled_locations, unlabelled_locations
from soilnet.data.points import read_points
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.sampling import epoch_order, shard_ids
from soilnet.data.stream import SampleReader, build_dataset, torch_collate
from soilnet.data.stream_config import StreamConfig


class CountingStore(WrapperStore):
    """A zarr store wrapper that counts the bytes and requests it returns."""

    nbytes = 0
    requests = 0
    _lock = threading.Lock()

    def _count(self, buf: Any) -> None:
        if buf is not None:
            with CountingStore._lock:
                CountingStore.nbytes += len(buf)
                CountingStore.requests += 1

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        buf = await self._store.get(key, prototype, byte_range)
        self._count(buf)
        return buf

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Any]:
        bufs = await self._store.get_partial_values(prototype, key_ranges)
        for buf in bufs:
            self._count(buf)
        return bufs


def start_s3() -> Any:
    """A moto S3 server on a free loopback port, with a bucket; endpoint in the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
    )
    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
    # s3fs sessions still open at interpreter exit are reported by asyncio after the figure line
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return server


def naive(raster_url: str, table: Any, patch: int) -> tuple[float, float]:
    """Samples/s and read amplification of one window read per sample."""
    cube = open_raster_cube(raster_url)
    counted = zarr.open_group(CountingStore(cube.group.store), mode="r")
    bands = counted["bands"]
    CountingStore.nbytes = 0
    start = time.perf_counter()
    for x, y in zip(table["x"], table["y"], strict=True):
        r0, c0 = cube.window_at(x, y, patch)
        r0, c0 = max(r0, 0), max(c0, 0)
        np.asarray(bands[:, r0 : r0 + patch, c0 : c0 + patch])
    seconds = time.perf_counter() - start
    delivered = len(table) * len(BAND_NAMES) * patch * patch * 2
    return len(table) / seconds, CountingStore.nbytes / delivered


def in_process(raster_url: str, climate_url: str, table: Any, cfg: StreamConfig) -> tuple[float, float, int]:
    """Samples/s, read amplification and requests of `SampleReader` over ``read_batch_size`` slices."""
    reader = SampleReader(raster_url, climate_url, cfg.patch_px, cfg.months, "raw", threads=cfg.read_threads)
    start = time.perf_counter()
    for i in range(0, len(table), cfg.read_batch_size):
        part = table.iloc[i : i + cfg.read_batch_size]
        reader({c: part[c].to_numpy() for c in part.columns})
    seconds = time.perf_counter() - start
    delivered = len(table) * len(BAND_NAMES) * cfg.patch_px**2 * 2
    return len(table) / seconds, reader.windows.bytes_fetched / delivered, reader.windows.requests


def pipeline(raster_url: str, climate_url: str, table: Any, cfg: StreamConfig) -> float:
    """Samples/s delivered by the Ray Data stream to a loop over torch batches (3 epochs in one stream).

    The clock starts at the first batch, so actor start-up (once per job) is not counted.
    """
    import ray
    from ray.data import DataContext

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    DataContext.get_current().enable_progress_bars = False
    ds = build_dataset(table, raster_url, climate_url, cfg, epochs=[0, 1, 2], output="decoded")
    n, start = 0, 0.0
    for batch in ds.iter_torch_batches(batch_size=cfg.batch_size, collate_fn=torch_collate):
        if n == 0:
            start = time.perf_counter()
        n += len(batch["id"])
    seconds = time.perf_counter() - start
    n -= cfg.batch_size
    ray.shutdown()
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small region and sample counts (< 2 minutes).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    size_km, n_unl, n_naive = (18.0, 800, 100) if args.quick else (60.0, 8000, 400)
    server = start_s3()
    try:
        t = time.perf_counter()
        paths = generate_demo_region(DemoConfig(width_km=size_km, height_km=size_km, n_points=400), "s3://bench/demo")
        print(f"generated {size_km:.0f} x {size_km:.0f} km region on S3 in {time.perf_counter() - t:.1f} s")
        cube = open_raster_cube(paths.raster)
        cfg = StreamConfig(n_unlabelled=n_unl, buffer_px=0, shuffle="shard", read_batch_size=256, batch_size=64)
        unl = unlabelled_locations(cube, cfg)
        order = epoch_order(len(unl), "shard", 0, 0, shard_ids(cube.grid, cube.layout.shard, unl["x"], unl["y"]))
        unl = unl.iloc[order].reset_index(drop=True)
        labelled = labelled_locations(read_points(paths.points)[0], "soc_g_kg", FoldConfig(k=3))
        labelled = labelled.iloc[np.random.default_rng(0).permutation(len(labelled))].reset_index(drop=True)
        print(f"{len(unl)} unlabelled locations (shard order), {len(labelled)} labelled points")

        naive_rate, naive_amp = naive(paths.raster, unl.iloc[:n_naive], cfg.patch_px)
        print(f"naive     {naive_rate:8.1f} samples/s  read amplification {naive_amp:5.2f}")
        rate, amp, requests = in_process(paths.raster, paths.climate, unl, cfg)
        print(f"reader    {rate:8.1f} samples/s  read amplification {amp:5.2f}  ({requests} requests, shard order)")
        sparse_cfg = cfg.model_copy(update={"read_batch_size": 64})
        s_rate, s_amp, s_req = in_process(paths.raster, paths.climate, labelled, sparse_cfg)
        print(f"sparse    {s_rate:8.1f} samples/s  read amplification {s_amp:5.2f}  ({s_req} requests, labelled)")
        p_rate = pipeline(paths.raster, paths.climate, unl, cfg)
        print(f"pipeline  {p_rate:8.1f} samples/s  (Ray Data, {cfg.reader_concurrency} reader actors)")
        print(
            f"STREAMING: {p_rate / naive_rate:.1f}x samples/s vs naive (in-process reader {rate / naive_rate:.1f}x), "
            f"read amplification {amp:.2f} shard-ordered / {s_amp:.2f} sparse (target: >=5x, <=2)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
