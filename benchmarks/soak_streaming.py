"""Soak of the training-sample stream: many epochs over a generated cube with memory sampled per epoch.

Generates a small demo region on local disk, draws unlabelled locations, and consumes one Ray Data
stream (`build_dataset`) of many epochs through ``iter_torch_batches`` for a bounded time, as a
training loop does (a fixed number of batches per epoch). After every epoch it samples the
resident memory of the driver and of every process Ray started below it (GCS, raylet, reader
actors): ``VmRSS``, its private part ``RssAnon``, and the object store's shared memory
(``RssShmem``, counted once). Growth per epoch is the least-squares slope, after the warm-up
epochs, of private memory plus object store (summed VmRSS counts shared pages in every process
that maps them, so it is reported but not used).

    python benchmarks/soak_streaming.py [--quick] [--seconds N]

The last line holds the key figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.locations import unlabelled_locations
from soilnet.data.raster_cube import RasterLayout, open_raster_cube
from soilnet.data.stream import build_dataset, torch_collate
from soilnet.data.stream_config import StreamConfig

MIB = 2**20
WARMUP_EPOCHS = 3
#: Epochs in the stream; the soak stops at its time bound long before.
MAX_EPOCHS = 400
#: Epochs sampled at least (time allowing, up to 4x the time bound) so the slope has points after warm-up.
MIN_EPOCHS = WARMUP_EPOCHS + 8


def _status(pid: int) -> dict[str, int]:
    """Memory fields (bytes) and parent of a process from ``/proc/<pid>/status``; empty if it is gone."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssShmem"):
            fields[key] = int(value.split()[0]) * 1024
        elif key == "PPid":
            fields[key] = int(value)
    return fields


def process_tree_memory(root: int) -> dict[str, float]:
    """MiB of resident memory of ``root`` and all its descendants: total, private, and the driver alone."""
    table = {int(p.name): _status(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, s in table.items() if s.get("PPid") == parent and pid not in tree]
        tree.update(children)
        frontier += children
    members = [table.get(pid, {}) for pid in tree]
    return {
        "rss": sum(m.get("VmRSS", 0) for m in members) / MIB,
        "private": sum(m.get("RssAnon", 0) for m in members) / MIB,
        "shared": max((m.get("RssShmem", 0) for m in members), default=0) / MIB,
        "driver": table.get(root, {}).get("VmRSS", 0) / MIB,
        "processes": len(tree),
    }


def slope(values: list[float]) -> float:
    """Least-squares growth per step of a series (0 for fewer than two points)."""
    if len(values) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(values), dtype=np.float64), np.asarray(values), 1)[0])


def soak(root: str, seconds: float, size_km: float, n_locations: int) -> list[dict[str, float]]:
    """Stream epochs for ``seconds``; one memory sample per finished epoch."""
    import ray
    from ray.data import DataContext

    paths = generate_demo_region(
        DemoConfig(width_km=size_km, height_km=size_km, n_points=50), root, RasterLayout(inner_chunk=32, shard=128)
    )
    cfg = StreamConfig(n_unlabelled=n_locations, buffer_px=0, shuffle="shard", read_batch_size=64, batch_size=32)
    locations = unlabelled_locations(open_raster_cube(paths.raster), cfg)
    print(f"{len(locations)} locations on a {size_km:g} x {size_km:g} km cube; streaming for {seconds:.0f} s")
    ray.init(address="local", num_cpus=2, object_store_memory=256 * MIB, include_dashboard=False, log_to_driver=False)
    DataContext.get_current().enable_progress_bars = False
    samples: list[dict[str, float]] = []
    steps = -(-len(locations) // cfg.batch_size)  # batches of one epoch (the last one padded)
    batches = None
    try:
        ds = build_dataset(locations, paths.raster, paths.climate, cfg, epochs=range(MAX_EPOCHS), output="decoded")
        start, seen = time.perf_counter(), 0
        batches = iter(ds.iter_torch_batches(batch_size=cfg.batch_size, collate_fn=torch_collate))
        for step, batch in enumerate(batches, 1):
            seen += len(batch["id"])
            if step % steps:
                continue
            sample = {"epoch": step // steps - 1, "seconds": time.perf_counter() - start, "samples": seen}
            sample.update(process_tree_memory(os.getpid()))
            samples.append(sample)
            print(
                f"epoch {sample['epoch']:3d}  {sample['seconds']:6.1f} s  rss {sample['rss']:7.1f} MiB  "
                f"private {sample['private']:7.1f} MiB  object store {sample['shared']:6.1f} MiB  "
                f"driver {sample['driver']:6.1f} MiB  ({int(sample['processes'])} processes)",
                flush=True,
            )
            enough = len(samples) >= MIN_EPOCHS and sample["seconds"] > seconds
            if enough or sample["seconds"] > 4 * seconds:
                break
    finally:
        if batches is not None:
            batches.close()  # stop the prefetching threads before Ray goes away (the soak breaks off mid-stream)
        ray.shutdown()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="About 60-90 s in all.")
    parser.add_argument("--seconds", type=float, default=None, help="Streaming time (default 60 quick, 600 full).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    seconds = args.seconds or (45.0 if args.quick else 600.0)
    size_km, n_locations = (6.0, 512) if args.quick else (18.0, 4096)
    with tempfile.TemporaryDirectory(prefix="soak-") as root:
        samples = soak(root, seconds, size_km, n_locations)
    steady = samples[WARMUP_EPOCHS:]
    if len(steady) < 3:
        raise SystemExit(f"only {len(samples)} epochs in {seconds:.0f} s: run longer (--seconds)")
    growth = slope([s["private"] + s["shared"] for s in steady])
    rss = slope([s["rss"] for s in steady])
    driver = slope([s["driver"] for s in steady])
    first, last = steady[0], steady[-1]
    print(
        f"{len(samples)} epochs, {last['samples']} samples in {last['seconds']:.0f} s; after {WARMUP_EPOCHS} warm-up "
        f"epochs private + object store {first['private'] + first['shared']:.0f} -> "
        f"{last['private'] + last['shared']:.0f} MiB; slopes: private + object store {growth:+.2f}, "
        f"VmRSS sum {rss:+.2f} (counts shared pages once per process), driver {driver:+.2f} MiB/epoch"
    )
    print(f"SOAK_STREAMING: {growth:+.2f} MiB/epoch (target: < 5 MiB/epoch after warm-up)")


if __name__ == "__main__":
    main()
