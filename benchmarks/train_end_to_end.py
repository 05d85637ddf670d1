"""The reader's share of a training step's CPU: the SoilNet recipe fed from S3, and its end-to-end rate.

Starts a moto S3 server on 127.0.0.1 (in a process of its own, so its request handling is not
charged to the readers) and writes a generated demo region into it, then trains the
``soilnet`` recipe (ResNet-101 + GLAM after layer 2 + 2-layer LSTM; 14 x 64 x 64 images, 61 x 14
climate series, batch 32) with the training step of `train_worker` (`PlainTrainer`: AdamW,
cosine schedule, gradient clipping), in one process with torch's default threads:

  - compute: the step rate on one in-memory normalised batch (nothing to read);
  - streamed: the same step fed by the Ray Data stream of the labelled points (`CubeSource.dataset`:
    `build_dataset` with 2 `SampleReader` actors reading windows and 61-month series from S3 and
    normalising them, global shuffle), consumed with ``iter_torch_batches(prefetch_batches=2)``, so
    reading the next batches overlaps the current step.

The headline: the readers' CPU per batch (the `SampleReader` of the Ray actors, in this process:
windows and 61-month series read from S3, decoded and normalised) over ``READ_BATCHES`` (50)
streamed batches of distinct points, as a share of a training step's CPU plus that: the share of a
training node's CPU that feeding it costs, a figure a shared machine's load does not move.

Secondary, timing: the streamed path times 8 steps (--quick: 2, as a step takes seconds on a small CPU): its dataset
holds exactly the timed batches and the clock starts when the first batch arrives (reader actors
start once per job), so reading every later batch falls inside the timed window, competing for the
same cores as on a training node. The compute path times half as many steps before and
half after the streamed ones (after one warm-up step) and takes the mean, so a drifting load from
other processes weighs on both alike. Also printed: the time the loop waited for data (near zero
when reading keeps up).

    python benchmarks/train_end_to_end.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import pandas as pd
import torch
from s3_server import start_s3
from train_overhead import PlainTrainer

from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.folds import FoldConfig
from soilnet.data.normalisation import NormStats, fit_normalisation, normalise_batch
from soilnet.data.stream import torch_collate
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.training.batches import StreamBatches
from soilnet.training.config import OptimConfig
from soilnet.training.job import fit_recipe, labelled_table, with_target_stats
from soilnet.training.loop import ModelSpec, WorkerSpec
from soilnet.training.samples import CubeInputs, CubeSource
from soilnet.training.tasks import RegressionTask

RECIPE = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "recipes" / "soilnet.yaml"
#: Batches the readers' CPU is measured over (distinct points, one cold reader).
READ_BATCHES = 50


def compute_rate(trainer: PlainTrainer, batch: dict[str, torch.Tensor], steps: int) -> tuple[float, float]:
    """Samples/s of `steps` steps on one in-memory batch, and the CPU seconds of a step (all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer.step(batch)
    cpu = (time.process_time() - cpu) / steps
    return steps * len(batch["target"]) / (time.perf_counter() - start), cpu


def read_cpu(source: CubeSource, rows: pd.DataFrame, stats: NormStats, mask_channel: bool, size: int) -> float:
    """CPU seconds of this process per batch of ``size`` to read and normalise `rows` in-process, batch by batch."""
    cpu = time.process_time()
    for i in range(0, len(rows), size):
        normalise_batch(source.read(rows.iloc[i : i + size]), stats, mask_channel)
    return (time.process_time() - cpu) / -(-len(rows) // size)


def streamed_rate(trainer: PlainTrainer, dataset, batch_size: int, steps: int) -> tuple[float, float, float]:
    """Samples/s of the steps over `dataset` (exactly `steps` batches), timed from the first batch's arrival.

    Every later batch is read inside the timed window. Also returns the seconds until the first batch
    (reader actors starting, first read) and the seconds the loop waited for the later ones.
    """
    start = time.perf_counter()
    batches = iter(dataset.iter_torch_batches(batch_size=batch_size, collate_fn=torch_collate, prefetch_batches=2))
    batch = next(batches)
    first = time.perf_counter() - start
    waited, start = 0.0, time.perf_counter()
    for i in range(steps):
        trainer.step(batch)
        if i + 1 < steps:
            t = time.perf_counter()
            batch = next(batches)
            waited += time.perf_counter() - t
    return steps * batch_size / (time.perf_counter() - start), first, waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 streamed steps instead of 8 (< 2 minutes).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("ray", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("RAY_worker_niceness", "0")  # readers at the trainer's priority (Ray's default: 15)
    steps = 2 if args.quick else 8
    import ray
    from ray.data import DataContext

    server = start_s3()
    try:
        n_points = READ_BATCHES * 32 + 200
        paths = generate_demo_region(DemoConfig(width_km=6, height_km=6, n_points=n_points, seed=4), "s3://bench/e2e")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        DataContext.get_current().enable_progress_bars = False
        data = DataConfig(root=paths.root)
        inputs = CubeInputs.open(data)
        stream = StreamConfig(batch_size=32, read_batch_size=32, reader_concurrency=2, reader_cpus=0.5)
        recipe, stream = fit_recipe(str(RECIPE), inputs, stream)
        table = labelled_table(data, "soc_g_kg", FoldConfig(k=3))
        size = stream.batch_size
        if len(table) < READ_BATCHES * size:
            raise RuntimeError(f"{len(table)} labelled points, {READ_BATCHES * size} needed for the reader's figure")
        source = CubeSource(inputs, stream)
        stats = fit_normalisation(table, source.read, inputs.bands, inputs.variables, max_rows=128)
        stats = with_target_stats(stats, table["target"].to_numpy())
        reading = table.iloc[-READ_BATCHES * size :]  # distinct points, one cold reader
        batch_cpu = read_cpu(CubeSource(inputs, stream), reading, stats, stream.mask_channel, size)
        first = normalise_batch(source.read(table.iloc[: stream.batch_size]), stats, stream.mask_channel)
        batch = {k: torch.from_numpy(first[k]) for k in ("image", "climate", "target")}
        task = RegressionTask(recipe, "mse", 1.0, None, False)
        val = {k: first[k] for k in ("image", "climate", "target")}  # the spec needs validation rows; unused here
        model = ModelSpec("end_to_end", StreamBatches("train"), stats, 2 * steps + 1, val=val)
        trainer = PlainTrainer(WorkerSpec(task, OptimConfig(), [model], "", 1, stream.batch_size))
        shapes = f"image {tuple(batch['image'].shape)}, climate {tuple(batch['climate'].shape)}"
        print(f"soilnet recipe, {shapes}, {torch.get_num_threads()} torch threads, {steps} streamed steps")

        trainer.step(batch)  # warm-up
        before, step_cpu = compute_rate(trainer, batch, max(1, steps // 2))
        dataset = source.dataset(table.iloc[: steps * stream.batch_size], [0], 1, stats)
        streamed, first, waited = streamed_rate(trainer, dataset, stream.batch_size, steps)
        after, _ = compute_rate(trainer, batch, max(1, steps // 2))
        compute = (before + after) / 2
        print(
            f"compute   {compute:8.2f} samples/s  ({size / compute:.2f} s/step on an in-memory batch; "
            f"{before:.2f} before, {after:.2f} after the streamed steps)"
        )
        print(
            f"streamed  {streamed:8.2f} samples/s  ({size / streamed:.2f} s/step, waited {waited:.2f} s "
            f"for batches 2-{steps}; first after {first:.1f} s: {stream.reader_concurrency} S3 reader actors start)"
        )
        print(
            f"timing: streamed {100 * streamed / compute:.1f}% of the compute-only rate ({steps} steps, shared machine)"
        )
        share = batch_cpu / (batch_cpu + step_cpu)
        print(
            f"CPU per batch of {size}: training step {step_cpu:.2f} s, readers {batch_cpu:.3f} s "
            f"(read + normalise, over {READ_BATCHES} streamed batches; S3 server not included)"
        )
        ray.shutdown()
    finally:
        server.stop()
    print(
        f"TRAIN_END_TO_END: reader share {100 * share:.1f}% of a training step's CPU over {READ_BATCHES} "
        "streamed batches (target: <= 10%)"
    )


if __name__ == "__main__":
    main()
