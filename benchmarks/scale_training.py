"""Training at continental density, on S3: streamed SSL pretraining and fine-tuning on a cached 20,000-point table.

The workspace (raster and climate cubes, points table; `soilnet demo-data`) lives on a loopback moto S3 server
in its own process that counts every request and byte it serves, from whichever process (`s3_server.start_s3`).
The jobs run as a user runs them (``soilnet pretrain`` / ``soilnet finetune``, 2 Ray Train workers) in child
processes; MLflow (SQLite) and run folders stay on local disk.

- **pretraining**, ``train.data_source: stream``: unlabelled windows streamed from the cube for several epochs;
  the resident memory of the job's whole process tree (driver, Ray, workers, readers; private memory plus the
  object store's shared memory, counted once) is sampled every second and its peak taken per epoch; growth
  per epoch is the least-squares slope after the first (warm-up) epoch;
- **fine-tuning**, ``train.data_source: cache``, one fold model (``finetune.only_folds: [0]``) on every point:
  the labelled windows are read once into the workers' cache, so epoch 2 reads no byte from storage.

Epochs end at the times their metrics reach MLflow; storage figures per epoch are the server's traffic under
the workspace's cubes and points table between those times (to 0.2 s).

    python benchmarks/scale_training.py [--quick] [--keep DIR]

Last line: ``SCALE_TRAINING: points=N ssl_epochs=E ssl_rss_growth_mib_per_epoch=G epoch2_read_bytes=B``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from s3_server import counts_between, start_s3
from scale import patient_ray_start
from soak_streaming import process_tree_memory, slope

ROOT = "s3://bench/train"
#: The workspace parts whose reads are storage reads of the training data.
DATA_PARTS = ("raster.zarr", "climate.zarr", "points.parquet")
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Size:
    """A rehearsal's size."""

    km: float
    points: int
    ssl_windows: int
    ssl_epochs: int
    ft_epochs: int


FULL = Size(km=30.0, points=20_000, ssl_windows=2_000, ssl_epochs=3, ft_epochs=2)
QUICK = Size(km=12.0, points=1_000, ssl_windows=500, ssl_epochs=3, ft_epochs=2)


def write_config(folder: Path, size: Size) -> Path:
    """The jobs' YAML config: workspace on S3, runs and MLflow under ``folder``."""
    recipe = str(REPO / "jobs" / "configs" / "demo-recipe.yaml")
    cfg = {
        "data": {"root": ROOT, "runs": str(folder / "runs"), "write_roots": [str(folder)]},
        "tracking": {"uri": f"sqlite:///{folder / 'mlruns.db'}", "artifacts": str(folder / "mlartifacts")},
        "demo": {"width_km": size.km, "height_km": size.km, "resolution_m": 30, "seed": 0, "n_points": size.points},
        "raster_layout": {"inner_chunk": 64, "shard": 512},
        "train": {"num_workers": 2, "cpus_per_worker": 0.5},
        "pretrain": {
            "recipe": recipe,
            "epochs": size.ssl_epochs,
            "run_name": "pretrain-scale",
            "stream": {"n_unlabelled": size.ssl_windows, "buffer_px": 0, "batch_size": 64},
        },
        "finetune": {
            "recipe": recipe,
            "epochs": size.ft_epochs,
            "patience": size.ft_epochs,
            "folds": {"k": 6},
            "only_folds": [0],
            "run_name": "finetune-scale",
            "stream": {"batch_size": 64, "buffer_px": 0},
            "calibration": {"aoa": False},
        },
    }
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class MemorySampler(threading.Thread):
    """(unix time, private + object store MiB) of this process's tree (Ray and the job), the S3 server left out."""

    def __init__(self, server: int) -> None:
        super().__init__(daemon=True)
        self.server, self.samples, self.halt = server, [], threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            mem, moto = process_tree_memory(os.getpid()), process_tree_memory(self.server)
            self.samples.append((time.time(), mem["private"] - moto["private"] + mem["shared"]))


def run_job(args: list[str], log: Path, server: int) -> tuple[float, float, list[tuple[float, float]]]:
    """Run ``soilnet ARGS`` to its end (output to ``log``); its start, end and memory samples."""
    start = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "soilnet"), *args], stdout=out, stderr=out)
        sampler = MemorySampler(server)
        sampler.start()
        code = proc.wait()
        sampler.halt.set()
    if code:
        raise RuntimeError(f"soilnet {' '.join(args)} failed ({code}); see {log}:\n{log.read_text()[-3000:]}")
    return start, time.time(), sampler.samples


def epoch_ends(tracking: str, start: float, end: float) -> list[float]:
    """Unix times at which the epochs of the run that started in [start, end] logged train_loss (by step)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    best: list[float] = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            if not start * 1000 <= run.info.start_time <= end * 1000:
                continue
            history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
            if len(history) > len(best):
                best = [m.timestamp / 1000 for m in history]
    return best


def per_epoch(
    counts: str, start: float, ends: list[float], samples: list[tuple[float, float]]
) -> list[tuple[int, float, int, int]]:
    """(epoch, peak MiB, storage bytes read, storage requests) of each epoch."""
    prefixes = [f"bench/train/{part}" for part in DATA_PARTS]
    rows, begin = [], start
    for k, end in enumerate(ends, start=1):
        peak = max((m for t, m in samples if begin < t <= end), default=float("nan"))
        served = counts_between(counts, begin, end, prefixes)
        rows.append((k, peak, served["read"], served["requests"]))
        begin = end
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 x 12 km, 1,000 points, 500 SSL windows.")
    parser.add_argument("--keep", help="Folder to work in and keep (default: a temporary one).")
    parser.add_argument("--jobs", nargs="+", choices=["pretrain", "finetune"], default=["pretrain", "finetune"])
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    folder = Path(args.keep or tempfile.mkdtemp(prefix="scale-training-"))
    folder.mkdir(parents=True, exist_ok=True)
    counts = str(folder / "s3-counts.jsonl")
    server = start_s3(counts=counts)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    import ray

    patient_ray_start()  # one local cluster the jobs join ($RAY_ADDRESS): a crowded machine misses Ray's 30 s start
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    try:
        config = write_config(folder, size)
        tracking = f"sqlite:///{folder / 'mlruns.db'}"
        t0, t1, _ = run_job(["demo-data", "-c", str(config)], folder / "demo-data.log", server.process.pid)
        written = counts_between(counts, t0, t1 + 0.5)["written"]
        print(f"workspace: {size.km:g} x {size.km:g} km at 30 m, {size.points} points, {written / 1e6:.1f} MB "
              f"written to S3 in {t1 - t0:.0f} s (under load)")  # fmt: skip
        print("| job | epoch | peak private + object store MiB | storage read MB | storage requests |")
        print("|---|---|---|---|---|")
        results = {}
        for name, source in (("pretrain", "stream"), ("finetune", "cache")):
            if name not in args.jobs:
                continue
            start, end, samples = run_job(
                [name, "-c", str(config), "--set", f"train.data_source={source}"], folder / f"{name}.log",
                server.process.pid,
            )  # fmt: skip
            rows = per_epoch(counts, start, epoch_ends(tracking, start, end), samples)
            for k, peak, read, requests in rows:
                print(f"| {name} ({source}) | {k} | {peak:.0f} | {read / 1e6:.2f} | {requests} |")
            print(f"{name}: {end - start:.0f} s wall (under load)")
            results[name] = rows
    finally:
        ray.shutdown()
        server.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    ssl, ft = results.get("pretrain", []), results.get("finetune", [])
    growth = slope([peak for _, peak, _, _ in ssl[1:]])
    epoch2 = ft[1][2] if len(ft) > 1 else -1
    print(
        f"SCALE_TRAINING: points={size.points} ssl_epochs={len(ssl)} ssl_rss_growth_mib_per_epoch={growth:.1f} "
        f"epoch2_read_bytes={epoch2} (target: ssl_epochs>=2 ssl_rss_growth_mib_per_epoch<=5 epoch2_read_bytes=0)"
    )


if __name__ == "__main__":
    main()
