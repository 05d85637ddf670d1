"""Ray Train loop overhead: soilnet's `train_worker` on Ray Train against a plain PyTorch loop.

Trains the demo recipe (tiny ViT + climate Transformer; 14 x 32 x 32 images, 12 x 14 climate
series) on the same in-memory normalised rows (generated), with the same batch size, optimiser,
schedule, gradient clipping, validation on 64 rows every epoch and one torch thread:

  - plain: a PyTorch loop (`PlainTrainer`) whose batches are cut from the rows and collated to
    tensors in a background thread two batches ahead (`soilnet.training.batches.prefetched`), as
    Ray's ``iter_torch_batches`` prefetches and collates in a thread of its own;
  - ray: `fit` with 1 worker, the rows as a materialised Ray dataset (repeated, not copied, for
    every epoch) that `train_worker` iterates with ``iter_torch_batches`` (a `StreamBatches`); it
    reports and checkpoints every epoch and keeps the best epoch's weights (MLflow off).

Throughput is steady state: the steps after the first epoch, timed at every optimiser step (the
loop's ``on_step`` callback in the worker). Worker start-up (``fit()`` to the end of the first
step, the line ``worker start-up: S s``) is reported apart. The plain loop runs before and after
the Ray run and their mean rate is used, and Ray's workers run at the driver's priority
(``RAY_worker_niceness=0``; Ray's default is 15), so a drifting load from other processes weighs on
both alike. overhead = 1 - ray rate / plain rate.

    python benchmarks/train_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soilnet.data.bands import BAND_NAMES, CLIMATE_VARIABLES
from soilnet.data.normalisation import NormStats
from soilnet.data.stream import torch_collate
from soilnet.recipes.recipe import load_recipe
from soilnet.training.batches import StreamBatches, prefetched
from soilnet.training.config import OptimConfig, TrainConfig
from soilnet.training.loop import ModelSpec, WorkerSpec, make_scheduler, validation_loss
from soilnet.training.tasks import RegressionTask
from soilnet.training.trainer import fit

RECIPE = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "demo-recipe.yaml"
ROWS = 320


class PlainTrainer:
    """The optimiser steps and validation of `train_worker` for a worker spec, in a plain PyTorch loop."""

    def __init__(self, spec: WorkerSpec) -> None:
        model = spec.models[0]
        torch.manual_seed(model.seed)
        self.spec, self.task, self.stats, self.clip = spec, spec.task, model.stats, spec.optim.grad_clip
        self.module = spec.task.build().train()
        self.optimizer = torch.optim.AdamW(
            spec.task.param_groups(self.module, spec.optim), weight_decay=spec.optim.weight_decay
        )
        total = spec.epochs * model.steps_per_epoch
        self.scheduler = make_scheduler(self.optimizer, spec.optim, total, model.steps_per_epoch)

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        """Forward, backward and update on a normalised batch with raw targets; returns the loss."""
        target = torch.nan_to_num((batch["target"].float() - self.stats.target_mean) / self.stats.target_std)
        valid = batch["valid"].float() if "valid" in batch else torch.ones_like(target)
        loss, _ = self.task.loss(self.module, {**batch, "target": target, "valid": valid})
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def validate(self, val: dict[str, np.ndarray]) -> float:
        """Validation loss over normalised rows with raw targets (as every epoch of `train_worker`)."""
        return validation_loss(self.task, self.module, val, self.spec.batch_size, self.stats, torch.device("cpu"))


class StepClock:
    """``on_step`` callback: the wall-clock time of every optimiser step, written out at the last one."""

    def __init__(self, path: str, total_steps: int) -> None:
        self.path, self.total_steps = path, total_steps
        self.times: list[float] = []

    def __call__(self, rank: int, step: int) -> None:
        self.times.append(time.time())
        if step == self.total_steps:
            Path(self.path).write_text("\n".join(repr(t) for t in self.times))


def steady_rate(times: list[float], skip: int, batch_size: int) -> float:
    """Samples/s over the steps after the first `skip` ones (`times`: end of every step)."""
    return (len(times) - skip) * batch_size / (times[-1] - times[skip - 1])


def step_profile(times: list[float], steps_per_epoch: int) -> tuple[float, float]:
    """Median seconds of a step after the first epoch, and the mean extra seconds of an epoch's first step.

    The extra is the work between epochs: validation (both loops), report and checkpoint (Ray Train).
    """
    durations = np.diff(times)
    median = float(np.median(durations[steps_per_epoch:]))
    return median, float(np.mean(durations[steps_per_epoch - 1 :: steps_per_epoch] - median))


def plain_run(spec: WorkerSpec, arrays: dict[str, np.ndarray]) -> list[float]:
    """End times of the steps of a plain loop over the full batches of `arrays`, validating every epoch."""
    trainer = PlainTrainer(spec)
    model = spec.models[0]
    size = spec.batch_size
    full = len(arrays["target"]) // size

    def batches(epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        for step in range(model.steps_per_epoch):
            i = (epoch * model.steps_per_epoch + step) % full
            yield torch_collate({k: v[i * size : (i + 1) * size] for k, v in arrays.items()})

    times = []
    for epoch in range(spec.epochs):
        for batch in prefetched(batches(epoch), 2):
            trainer.step(batch)
            times.append(time.time())
        trainer.validate(model.val)
    return times


def generated_rows(n_bands: int, patch_px: int, months: int, n_vars: int) -> tuple[dict[str, np.ndarray], NormStats]:
    """`ROWS` normalised samples with raw targets (SOC-like, g/kg), and statistics that match them."""
    rng = np.random.default_rng(0)
    arrays = {
        "image": rng.random((ROWS, n_bands, patch_px, patch_px), dtype=np.float32),
        "climate": rng.standard_normal((ROWS, months, n_vars), dtype=np.float32),
        "target": rng.normal(30.0, 10.0, ROWS).astype(np.float32),
    }
    stats = NormStats(
        image_method="minmax",
        bands=list(BAND_NAMES)[:n_bands],
        image_center=[0.0] * n_bands,
        image_scale=[1.0] * n_bands,
        variables=list(CLIMATE_VARIABLES)[:n_vars],
        climate_mean=[0.0] * n_vars,
        climate_std=[1.0] * n_vars,
        target_mean=30.0,
        target_std=10.0,
        n_rows=ROWS,
    )
    return arrays, stats


def in_memory_dataset(arrays: dict[str, np.ndarray], repeats: int) -> Any:
    """The rows as a Ray dataset materialised once in the object store and repeated `repeats` times."""
    import ray.data

    def rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v[batch["id"]] for k, v in arrays.items()}

    once = ray.data.range(ROWS, override_num_blocks=ROWS // 64).map_batches(rows, batch_size=64).materialize()
    return once.union(*[once] * (repeats - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 epochs of 25 steps instead of 6 of 60 (< 2 minutes).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ray").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("RAY_worker_niceness", "0")
    epochs, steps = (4, 25) if args.quick else (6, 60)
    torch.set_num_threads(1)
    import ray
    from ray.data import DataContext

    recipe = load_recipe(RECIPE)
    d = recipe.data
    arrays, stats = generated_rows(d.n_bands, d.patch_px, d.n_months, d.n_climate_vars)
    val = {k: v[:64] for k, v in arrays.items()}
    batch_size = 32
    model = ModelSpec("overhead", StreamBatches("train"), stats, steps, val=val)
    spec = WorkerSpec(
        RegressionTask(recipe, "mse", 1.0, None, False),
        OptimConfig(lr=1e-3),
        [model],
        "",
        epochs,
        batch_size,
        threads=1,
    )
    print(
        f"demo recipe, {ROWS} in-memory rows, batch {spec.batch_size}, {epochs} epochs x {steps} steps, "
        f"validation on {len(val['target'])} rows every epoch, 1 torch thread"
    )
    before = plain_run(spec, arrays)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    DataContext.get_current().enable_progress_bars = False
    with tempfile.TemporaryDirectory() as tmp:
        dataset = in_memory_dataset(arrays, math.ceil(epochs * steps * spec.batch_size / ROWS))
        clock = StepClock(f"{tmp}/steps.txt", epochs * steps)
        train = TrainConfig(num_workers=1, cpus_per_worker=1, threads_per_worker=1, max_failures=0, keep_checkpoints=1)
        start = time.time()
        fit(
            replace(spec, on_step=clock, run_url=f"{tmp}/runs/overhead"),
            {"train": dataset},
            train,
            f"{tmp}/runs",
            "overhead",
        )
        fit_s = time.time() - start
        ray_times = [float(t) for t in Path(clock.path).read_text().split()]
    ray.shutdown()
    after = plain_run(spec, arrays)
    rates = {name: steady_rate(t, steps, spec.batch_size) for name, t in [("before", before), ("after", after)]}
    plain, ray_rate = (rates["before"] + rates["after"]) / 2, steady_rate(ray_times, steps, spec.batch_size)
    plain_step, plain_extra = np.mean([step_profile(t, steps) for t in (before, after)], axis=0)
    ray_step, ray_extra = step_profile(ray_times, steps)
    print(f"plain     {plain:8.1f} samples/s  (before {rates['before']:.1f}, after {rates['after']:.1f})")
    print(f"ray train {ray_rate:8.1f} samples/s  (steady state: epochs 2-{epochs})")
    print(
        f"median step {1000 * plain_step:.1f} ms plain / {1000 * ray_step:.1f} ms ray; between epochs "
        f"+{1000 * plain_extra:.0f} ms plain (validation) / +{1000 * ray_extra:.0f} ms ray (+ report, checkpoint)"
    )
    print(f"worker start-up: {ray_times[0] - start:.1f} s")
    print(f"(fit() to the end of the first step; the whole fit() took {fit_s:.1f} s)")
    print(f"TRAIN_OVERHEAD: {100 * (1 - ray_rate / plain):.1f}% (target: <= 10%)")


if __name__ == "__main__":
    main()
