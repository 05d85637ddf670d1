"""The Ray Train worker loop shared by pretraining and fine-tuning.

One worker group trains the models of a job one after the other (the K fold models of a
cross-validation, or the one pretraining model), so workers, process group and data feeds start
once per job, not once per fold. For each model, each worker takes exactly ``steps_per_epoch``
micro-batches of its batches per epoch (both kinds pad every epoch so shards are even), accumulates
``grad_accum_steps`` of them per optimiser step (DDP gradient sync only on the last), runs under
bf16 autocast on CUDA, and calls ``ray.train.report`` once per epoch (every worker, the same
number of times). An elastic group smaller than ``max_workers`` takes a larger share of each
optimiser step (`soilnet.training.elastic`): the global batch and schedule do not change. Each epoch
logs ``samples``, the real (non-padding) rows all workers trained on. Rank 0 attaches a checkpoint,
keeps the weights of the model's best K epochs
(`soilnet.training.best`) and logs to the model's MLflow run. Validation (fine-tuning) runs on
every worker over the same in-memory validation rows, so all workers take the same
early-stopping decision. A restarted worker group resumes from the last reported checkpoint (or
``resume_from``): the same model, optimiser and scheduler state, step counter and MLflow run.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from soilnet.data.normalisation import NormStats
from soilnet.reproducibility import deterministic_torch
from soilnet.tracking.runs import RunTracker
from soilnet.training.batches import Batches
from soilnet.training.best import best_folder, keep_if_best
from soilnet.training.config import OptimConfig, TrainConfig
from soilnet.training.elastic import WorkerShare, worker_share
from soilnet.training.schedule import make_scheduler, set_weight_decay
from soilnet.training.state import Progress, read_state, save_checkpoint
from soilnet.training.tasks import RegressionTask, Task

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]


@dataclass
class ModelSpec:
    """One model of the job: its batches, statistics, steps, validation rows (an object reference) and MLflow run."""

    name: str
    batches: Batches
    stats: NormStats
    steps_per_epoch: int
    seed: int = 0
    tracker: RunTracker | None = None
    val: Any = None
    job: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkerSpec:
    """Everything the workers need (picklable): the task, the models in training order, the shared settings."""

    task: Task
    optim: OptimConfig
    models: list[ModelSpec]
    run_url: str
    epochs: int
    batch_size: int
    grad_accum_steps: int = 1
    use_amp: bool = True
    threads: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    keep_best: int = 1
    resume_from: str | None = None
    on_step: StepCallback | None = None
    max_workers: int | None = None

    @classmethod
    def from_config(
        cls,
        task: Task,
        optim: OptimConfig,
        models: list[ModelSpec],
        run_url: str,
        epochs: int,
        batch_size: int,
        train: TrainConfig,
        resume_from: str | None = None,
        on_step: StepCallback | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
    ) -> WorkerSpec:
        """A spec whose worker settings (accumulation, AMP, threads, best K kept) come from the ``train`` section."""
        return cls(
            task=task,
            optim=optim,
            models=models,
            run_url=run_url,
            epochs=epochs,
            batch_size=batch_size,
            grad_accum_steps=train.grad_accum_steps,
            use_amp=train.use_amp,
            threads=train.threads_per_worker,
            patience=patience,
            min_delta=min_delta,
            keep_best=train.keep_checkpoints,
            resume_from=resume_from,
            on_step=on_step,
            max_workers=train.max_workers,
        )

    def share(self, model: ModelSpec, world: int) -> WorkerShare:
        """What each of `world` workers takes of `model`'s optimiser steps and epochs (the group size of
        ``max_workers``, default `world`, sets the global batch)."""
        return worker_share(
            world, self.max_workers or world, self.batch_size, self.grad_accum_steps, model.steps_per_epoch
        )

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("a training job needs at least one model")
        if self.task.score == "val_loss":
            missing = [m.name for m in self.models if m.val is None]
            if missing:
                raise ValueError(f"models {missing}: the task early-stops on val_loss but has no validation rows")


def _to_device(batch: dict[str, Any], device: torch.device, stats: NormStats) -> dict:
    """The batch's tensors on `device`, targets standardised with the model's statistics.

    One output: NaN targets (unlabelled rows) become 0. Several outputs (target (B, K), C1): each
    column standardised with its own mean / std, NaN kept (the task masks missing labels), and the
    fold's ``class_weights`` added.
    """
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    if "valid" not in out:
        out["valid"] = torch.ones(out["image"].shape[0], device=device)
    out["valid"] = out["valid"].float()
    target = out.get("target")
    if target is not None and target.ndim == 2:
        mean, std = (
            torch.as_tensor(v, dtype=torch.float32, device=device) for v in (stats.target_mean, stats.target_std)
        )
        out["target"] = (target.float() - mean) / std
        if stats.class_weights is not None:
            out["class_weights"] = torch.as_tensor(stats.class_weights, dtype=torch.float32, device=device)
    elif target is not None:
        out["target"] = torch.nan_to_num((target.float() - stats.target_mean) / stats.target_std)
    return out


@torch.no_grad()
def validation_loss(
    task: RegressionTask, module: nn.Module, val: dict[str, np.ndarray], batch_size: int, stats: NormStats, device
) -> float:
    """Mean loss of the task over the validation rows (standardised targets), in eval mode."""
    module.eval()
    total, count = 0.0, 0
    for start in range(0, len(val["target"]), batch_size):
        # the validation rows come read-only from the object store: copy each batch (torch wants writable arrays)
        part = {k: torch.tensor(v[start : start + batch_size]) for k, v in val.items()}
        batch = _to_device(part, device, stats)
        out = module(batch["image"], batch["climate"])
        total += float(task.sample_losses(out, batch).sum())
        count += batch["target"].shape[0]
    module.train()
    return total / max(count, 1)


def _agree(value: float, device: torch.device) -> float:
    """Rank 0's value on every worker (identical decisions, e.g. early stopping)."""
    return _collective(value, device, total=False)


def _total(value: float, device: torch.device) -> float:
    """The sum of `value` over every worker."""
    return _collective(value, device, total=True)


def _collective(value: float, device: torch.device, total: bool) -> float:
    import torch.distributed as dist

    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    if total:
        dist.all_reduce(tensor)
    else:
        dist.broadcast(tensor, src=0)
    return float(tensor.item())


def _saved_state(spec: WorkerSpec) -> dict[str, Any] | None:
    """The state of the last reported checkpoint (a restarted worker group), else of ``resume_from``, else None."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            return read_state(folder)
    if spec.resume_from:
        return read_state(spec.resume_from)
    return None


def train_worker(spec: WorkerSpec) -> dict[str, float]:
    """The Ray Train loop (``train_loop_per_worker``): every model in turn; returns the last model's last metrics."""

    deterministic_torch(spec.threads or 1)
    state = _saved_state(spec)
    first = int(state["progress"].get("model", 0)) if state else 0
    metrics: dict[str, float] = {}
    for index in range(first, len(spec.models)):
        metrics = _train_model(spec, index, state if index == first else None)
    return metrics


@dataclass
class ModelRun:
    """One model in training on a worker: its module (and the module DDP wraps), optimiser, schedule, progress."""

    spec: ModelSpec
    index: int
    rank: int
    device: torch.device
    module: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    progress: Progress
    updates_per_epoch: int
    share: WorkerShare
    tracker: RunTracker | None
    val: dict[str, np.ndarray] | None

    def stopped(self, patience: int | None) -> bool:
        """Whether early stopping has ended this model (no improvement for `patience` epochs)."""
        return patience is not None and self.progress.bad_epochs >= patience


def _restore(spec: WorkerSpec, index: int, state: dict[str, Any] | None) -> ModelRun:
    """Build model `index` with its optimiser and schedule, from scratch or from a checkpoint's `state`."""
    import ray
    import ray.train
    import ray.train.torch

    model_spec = spec.models[index]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    share = spec.share(model_spec, world)
    torch.manual_seed(model_spec.seed)
    module = spec.task.build()
    model = ray.train.torch.prepare_model(module)
    optimizer = torch.optim.AdamW(spec.task.param_groups(module, spec.optim), weight_decay=spec.optim.weight_decay)
    updates_per_epoch = max(1, model_spec.steps_per_epoch // spec.grad_accum_steps)
    global_batch = share.batch_size * share.accum_steps * world
    scheduler = make_scheduler(optimizer, spec.optim, spec.epochs * updates_per_epoch, updates_per_epoch, global_batch)
    progress = Progress(model=index)
    if state is not None:
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        progress = Progress(**state["progress"])
        log.info("resumed %s at epoch %d, step %d on %d workers", model_spec.name, progress.epoch, progress.step, world)
    val = ray.get(model_spec.val) if isinstance(model_spec.val, ray.ObjectRef) else model_spec.val
    return ModelRun(
        spec=model_spec,
        index=index,
        rank=rank,
        device=ray.train.torch.get_device(),
        module=module,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=progress,
        updates_per_epoch=updates_per_epoch,
        share=share,
        tracker=model_spec.tracker if rank == 0 else None,
        val=val,
    )


def _run_epoch(spec: WorkerSpec, run: ModelRun, epoch: int) -> dict[str, float]:
    """Train one epoch (``steps_per_epoch`` micro-batches, accumulated); returns its training metrics."""
    model_spec, progress, device, share = run.spec, run.progress, run.device, run.share
    # The epoch's random draws (SSL augmentations, dropout) depend on (seed, epoch) only: a resumed epoch
    # draws what it would have drawn without the restart.
    torch.manual_seed(int(np.random.SeedSequence([model_spec.seed, epoch]).generate_state(1)[0]))
    amp = spec.use_amp and device.type == "cuda"
    distributed = isinstance(run.model, DistributedDataParallel)
    run.model.train()
    losses, monitors, samples = [], {}, 0
    for micro, raw in enumerate(model_spec.batches.epoch(epoch, share.steps_per_epoch, share.batch_size)):
        batch = _to_device(raw, device, model_spec.stats)
        samples += int((batch["valid"] > 0).sum())
        last = (micro + 1) % share.accum_steps == 0 or micro + 1 == share.steps_per_epoch
        sync = run.model.no_sync() if distributed and not last else contextlib.nullcontext()
        with sync, torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss, extra = spec.task.loss(run.model, batch)
            (loss / share.accum_steps).backward()
        losses.append(float(loss.detach()))
        for key, value in extra.items():
            monitors.setdefault(key, []).append(value)
        if last:
            if spec.optim.grad_clip:
                nn.utils.clip_grad_norm_(run.module.parameters(), spec.optim.grad_clip)
            set_weight_decay(run.optimizer, spec.optim, progress.step, spec.epochs * run.updates_per_epoch)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            spec.task.after_step(run.module, progress.step, spec.epochs * run.updates_per_epoch)
            if spec.on_step is not None:
                spec.on_step(run.rank, progress.step)
    progress.epoch = epoch + 1
    return {
        "epoch": progress.epoch,
        "step": progress.step,
        "train_loss": _total(float(np.mean(losses)), device) / share.world,
        "samples": _total(samples, device),
        "workers": share.world,
        "lr": run.scheduler.get_last_lr()[0],
        **{k: float(np.mean(v)) for k, v in monitors.items()},
    }


def _close_epoch(spec: WorkerSpec, run: ModelRun, metrics: dict[str, float]) -> bool:
    """Validate, score, keep the best weights, log and report the epoch with its checkpoint; True to stop early."""
    import ray.train
    from ray.train import CheckpointUploadMode

    progress, score_name = run.progress, spec.task.score
    if run.val is not None:
        task: RegressionTask = spec.task  # type: ignore[assignment]  # only regression has validation rows
        loss = validation_loss(task, run.module, run.val, spec.batch_size, run.spec.stats, run.device)
        metrics["val_loss"] = _agree(loss, run.device)
    score = metrics[score_name]
    if score < progress.best - spec.min_delta:
        progress.best, progress.bad_epochs = score, 0
    else:
        progress.bad_epochs += 1
    metrics["best_" + score_name] = progress.best
    checkpoint = None
    if run.rank == 0:
        best = best_folder(spec.run_url, run.spec.name)
        keep_if_best(run.module, progress, score, spec.keep_best, best, run.spec.name)
    if run.tracker is not None:
        run.tracker.log_metrics(metrics, step=progress.epoch)
    if run.rank == 0:  # uploaded in the background (Ray deletes the local folder after the upload)
        folder = tempfile.mkdtemp(prefix="soilnet-checkpoint-")
        save_checkpoint(folder, run.module, run.optimizer, run.scheduler, progress, run.spec.stats, run.spec.job)
        checkpoint = ray.train.Checkpoint.from_directory(folder)
    ray.train.report(
        {**metrics, "model": run.index}, checkpoint=checkpoint, checkpoint_upload_mode=CheckpointUploadMode.ASYNC
    )
    return run.stopped(spec.patience)


def _train_model(spec: WorkerSpec, index: int, state: dict[str, Any] | None) -> dict[str, float]:
    """Train model `index` from scratch or from `state`; returns its last metrics and progress."""
    run = _restore(spec, index, state)
    metrics: dict[str, float] = {}
    stopped = run.stopped(spec.patience)
    for epoch in range(run.progress.epoch, run.progress.epoch if stopped else spec.epochs):
        metrics = _run_epoch(spec, run, epoch)
        if _close_epoch(spec, run, metrics):
            log.info(
                "%s: early stop after epoch %d, no %s improvement for %d epochs",
                run.spec.name,
                epoch + 1,
                spec.task.score,
                run.progress.bad_epochs,
            )
            break
    if run.tracker is not None:
        run.tracker.flush()  # a spool left during a tracking outage lives on this node: deliver it before the end
    return {**metrics, **{"progress." + k: v for k, v in asdict(run.progress).items() if k != "top"}}
