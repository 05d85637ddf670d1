"""Training checkpoints: model, optimiser, scheduler, progress, normalisation stats, config, MLflow run id.

A checkpoint is a folder: ``state.pt`` (state dicts and progress counters, read back with
``torch.load(weights_only=True)`` so no pickled code ever runs), ``normalisation.json`` and
``job.json`` (the worker spec without object references, with the MLflow run id).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from soilnet.data.normalisation import NormStats, load_stats, save_stats

STATE_FILE = "state.pt"
STATS_FILE = "normalisation.json"
JOB_FILE = "job.json"


@dataclass
class Progress:
    """Where a run stands: the model in training, its finished epochs, optimiser steps, best scores, patience used.

    ``top`` lists ``[score, epoch]`` of the epochs whose weights are kept (the best K, best first).
    """

    model: int = 0
    epoch: int = 0
    step: int = 0
    best: float = float("inf")
    bad_epochs: int = 0
    top: list[list[float]] = field(default_factory=list)


def save_checkpoint(
    folder: str | os.PathLike[str],
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
    stats: NormStats,
    job: dict[str, Any],
) -> None:
    """Write a checkpoint folder (local; Ray Train uploads it to the run's storage)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": asdict(progress),
    }
    torch.save(state, folder / STATE_FILE)
    save_stats(stats, str(folder / STATS_FILE))
    (folder / JOB_FILE).write_text(json.dumps(job, indent=2, default=str))


def read_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dicts and progress of a checkpoint folder (tensors only, no code)."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a training checkpoint: {STATE_FILE} is missing")
    return torch.load(path, map_location="cpu", weights_only=True)


def read_job(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The job description stored with a checkpoint (config, MLflow run id)."""
    path = Path(folder) / JOB_FILE
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a training checkpoint: {JOB_FILE} is missing")
    return json.loads(path.read_text())


def read_stats(folder: str | os.PathLike[str]) -> NormStats:
    """The normalisation statistics stored with a checkpoint."""
    return load_stats(str(Path(folder) / STATS_FILE))
