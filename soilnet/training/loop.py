"""The Ray Train worker loop shared by pretraining and fine-tuning.

Each worker takes exactly ``steps_per_epoch`` micro-batches of its dataset shard per epoch (the
stream pads every epoch so shards are even), accumulates ``grad_accum_steps`` of them per
optimiser step (DDP gradient sync only on the last), runs under bf16 autocast on CUDA, and calls
``ray.train.report`` once per epoch (every worker, the same number of times); rank 0 attaches a
checkpoint and logs to MLflow. Validation (fine-tuning) runs on every worker over the same
in-memory validation rows, so all workers take the same early-stopping decision. A restarted
worker group resumes from the last reported checkpoint (or ``resume_from``), with the same
optimiser and scheduler state, step counter and MLflow run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from soilnet.data.normalisation import NormStats
from soilnet.data.streaming import torch_collate
from soilnet.tracking.runs import RunTracker
from soilnet.training.config import OptimConfig
from soilnet.training.state import Progress, read_state, save_checkpoint
from soilnet.training.tasks import RegressionTask, SSLTask

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]


@dataclass
class WorkerSpec:
    """Everything a worker needs (picklable; ``val`` is an object reference to normalised arrays)."""

    task: RegressionTask | SSLTask
    optim: OptimConfig
    stats: NormStats
    epochs: int
    steps_per_epoch: int
    batch_size: int
    grad_accum_steps: int = 1
    use_amp: bool = True
    seed: int = 0
    threads: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    tracker: RunTracker | None = None
    resume_from: str | None = None
    val: Any = None
    job: dict[str, Any] = field(default_factory=dict)
    on_step: StepCallback | None = None


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int, steps_per_epoch: int):
    """Per-optimiser-step LambdaLR: linear warm-up, then constant, cosine to 0, or step decay."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":
            span = max(1, total_steps - cfg.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))
        if cfg.schedule == "step":
            return cfg.gamma ** (step // (cfg.step_epochs * steps_per_epoch))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _to_device(batch: dict[str, Any], device: torch.device, target_mean: float, target_std: float) -> dict:
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    if "valid" not in out:
        out["valid"] = torch.ones(out["image"].shape[0], device=device)
    out["valid"] = out["valid"].float()
    target = out.get("target")
    if target is not None:
        out["target"] = torch.nan_to_num((target.float() - target_mean) / target_std)
    return out


@torch.no_grad()
def validation_loss(task: RegressionTask, module: nn.Module, val: dict[str, np.ndarray], spec: WorkerSpec, device):
    """Mean loss of the task over the validation rows (standardised targets), in eval mode."""
    module.eval()
    total, count = 0.0, 0
    for start in range(0, len(val["target"]), spec.batch_size):
        part = {k: torch.from_numpy(v[start : start + spec.batch_size]) for k, v in val.items()}
        batch = _to_device(part, device, spec.stats.target_mean, spec.stats.target_std)
        out = module(batch["image"], batch["climate"])
        total += float(task.per_sample(out, batch["target"]).sum())
        count += batch["target"].shape[0]
    module.train()
    return total / max(count, 1)


def _agree(value: float, device: torch.device) -> float:
    """Rank 0's value on every worker (identical decisions, e.g. early stopping)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def _restore(spec: WorkerSpec, module, optimizer, scheduler) -> Progress:
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = read_state(folder)
    elif spec.resume_from:
        state = read_state(spec.resume_from)
    else:
        return Progress()
    module.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    progress = Progress(**state["progress"])
    log.info("resumed at epoch %d, step %d", progress.epoch, progress.step)
    return progress


def _batches(spec: WorkerSpec) -> Iterator[dict[str, Any]]:
    import ray.train

    shard = ray.train.get_dataset_shard("train")
    return iter(shard.iter_torch_batches(batch_size=spec.batch_size, collate_fn=torch_collate, prefetch_batches=2))


def train_worker(spec: WorkerSpec) -> dict[str, float]:
    """The Ray Train loop (``train_loop_per_worker``); returns the last epoch's metrics."""
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    device = ray.train.torch.get_device()
    module = spec.task.build()
    model = ray.train.torch.prepare_model(module)
    optimizer = torch.optim.AdamW(spec.task.param_groups(module, spec.optim), weight_decay=spec.optim.weight_decay)
    updates_per_epoch = max(1, spec.steps_per_epoch // spec.grad_accum_steps)
    scheduler = make_scheduler(optimizer, spec.optim, spec.epochs * updates_per_epoch, updates_per_epoch)
    progress = _restore(spec, module, optimizer, scheduler)
    tracker = spec.tracker if rank == 0 else None
    val = None
    if spec.val is not None:
        val = ray.get(spec.val) if isinstance(spec.val, ray.ObjectRef) else spec.val
    batches = _batches(spec)
    amp = spec.use_amp and device.type == "cuda"
    metrics: dict[str, float] = {}
    for epoch in range(progress.epoch, spec.epochs):
        model.train()
        losses, monitors = [], {}
        for micro in range(spec.steps_per_epoch):
            batch = _to_device(next(batches), device, spec.stats.target_mean, spec.stats.target_std)
            last = (micro + 1) % spec.grad_accum_steps == 0 or micro + 1 == spec.steps_per_epoch
            sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync, torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss, extra = spec.task.loss(model, batch)
                (loss / spec.grad_accum_steps).backward()
            losses.append(float(loss.detach()))
            for key, value in extra.items():
                monitors.setdefault(key, []).append(value)
            if last:
                if spec.optim.grad_clip:
                    nn.utils.clip_grad_norm_(module.parameters(), spec.optim.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                progress.step += 1
                if hasattr(module, "after_step"):
                    module.after_step(progress.step, spec.epochs * updates_per_epoch)
                if spec.on_step is not None:
                    spec.on_step(rank, progress.step)
        progress.epoch = epoch + 1
        metrics = {
            "epoch": progress.epoch,
            "step": progress.step,
            "train_loss": float(np.mean(losses)),
            "lr": scheduler.get_last_lr()[0],
            **{k: float(np.mean(v)) for k, v in monitors.items()},
        }
        if val is not None:
            metrics["val_loss"] = _agree(validation_loss(spec.task, module, val, spec, device), device)
        score = metrics[spec.task.score]
        if score < progress.best - spec.min_delta:
            progress.best, progress.bad_epochs = score, 0
        else:
            progress.bad_epochs += 1
        metrics["best_" + spec.task.score] = progress.best
        stop = spec.patience is not None and progress.bad_epochs >= spec.patience
        if tracker is not None:
            tracker.log_metrics(metrics, step=progress.epoch)
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if rank == 0:
                save_checkpoint(folder, module, optimizer, scheduler, progress, spec.stats, spec.job)
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=checkpoint)
        if stop:
            log.info(
                "early stop after epoch %d: no %s improvement for %d epochs",
                epoch + 1,
                spec.task.score,
                progress.bad_epochs,
            )
            break
    return {**metrics, **{"progress." + k: v for k, v in asdict(progress).items()}}
