"""Training a spectral task on the shared Ray Train loop, tracked in MLflow; returns the best epoch's weights.

The spectra (a few thousand samples x a few thousand points) are put once in the object store and
cut per worker by `SpectraBatches`; the loop (`soilnet.training.loop`) handles DDP, checkpoints,
resumption, the best-K weights and the per-epoch MLflow metrics.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from soilnet import storage
from soilnet.data.sampling import steps_per_epoch
from soilnet.spectra.batches import SpectraBatches, no_stats
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import RunTracker
from soilnet.training.best import best_folder, read_best
from soilnet.training.config import OptimConfig, TrainConfig
from soilnet.training.loop import ModelSpec, WorkerSpec
from soilnet.training.trainer import ensure_ray, fit, refuse_earlier_run

log = logging.getLogger(__name__)


def start_run(tracking: TrackingConfig, workspace: str, run_name: str, kind: str, params: dict[str, Any]) -> RunTracker:
    """A new MLflow run of a spectral job with its parameters."""
    tracker = RunTracker.start(tracking, workspace, run_name, tags={"soilnet.job": kind})
    tracker.log_params(params)
    return tracker


def fit_spectral_task(
    task: Any,
    arrays: dict[str, np.ndarray],
    epochs: int,
    steps: int | None,
    batch_size: int,
    optim: OptimConfig,
    train: TrainConfig,
    runs_url: str,
    run_name: str,
    tracker: RunTracker,
    job: dict[str, Any],
) -> tuple[dict, dict[str, Any]]:
    """Train `task` on `arrays` (``views`` (N, R, L), ``counts`` (N,), per-sample extras) with Ray Train.

    ``steps`` batches per worker and epoch (None: one pass over the samples).

    Returns the state dict of the best epoch (lowest training loss) and its index entry.
    """
    import ray

    refuse_earlier_run(runs_url, run_name, None)
    ensure_ray()
    n_samples = len(arrays["counts"])
    model = ModelSpec(
        name=run_name,
        batches=SpectraBatches(ray.put(arrays), batch_size, train.seed),
        stats=no_stats(n_samples),
        steps_per_epoch=steps or steps_per_epoch(n_samples, train.max_workers, batch_size),
        seed=train.seed,
        tracker=tracker,
        job={**job, "tracking_uri": tracker.uri, "mlflow_run_id": tracker.run_id},
    )
    run_url = storage.join(runs_url, run_name)
    spec = WorkerSpec.from_config(task, optim, [model], run_url, epochs, batch_size, train)
    try:
        fit(spec, {}, train, runs_url, run_name)
    except Exception:
        tracker.finish("FAILED")
        raise
    return read_best(best_folder(run_url, run_name))
