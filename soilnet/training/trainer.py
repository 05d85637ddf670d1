"""Running a worker loop on Ray Train: local Ray or a cluster, checkpoints on a local folder or S3.

A cluster of more than one node needs checkpoints on an object store (`check_shared_storage`): a lost
node takes its disk with it. ``train.num_workers: [min, max]`` runs an elastic group
(`soilnet.training.elastic`): Ray Train restarts it from the last checkpoint on as many workers as
the cluster holds, down to ``min`` when a node is lost, and up again (checked every
``train.resize_check_s``) when one comes back.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from typing import Any

from soilnet import storage
from soilnet.logs import quiet_ray_data
from soilnet.training.config import TrainConfig
from soilnet.training.elastic import check_worker_range
from soilnet.training.loop import WorkerSpec, train_worker

log = logging.getLogger(__name__)


def ensure_ray() -> None:
    """Connect to ``$RAY_ADDRESS`` (a cluster, a Ray job) or start a local Ray instance."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    ray.init(address=address or "local", configure_logging=False, log_to_driver=False)
    quiet_ray_data()


def check_resources(cfg: TrainConfig) -> None:
    """Fail early, with the numbers, when the cluster cannot hold the requested (elastic: the fewest) workers."""
    import ray

    resources = ray.cluster_resources()
    workers = cfg.min_workers
    if cfg.use_gpu and resources.get("GPU", 0) < workers:
        raise ValueError(
            f"train.use_gpu is true with train.num_workers={cfg.num_workers}, but the cluster has "
            f"{resources.get('GPU', 0):g} GPUs: set train.use_gpu=false or add GPU workers"
        )
    need = workers * cfg.cpus_per_worker
    if resources.get("CPU", 0) < need:
        raise ValueError(
            f"train.num_workers={cfg.num_workers} x train.cpus_per_worker={cfg.cpus_per_worker} needs {need:g} "
            f"CPUs, the cluster has {resources.get('CPU', 0):g}"
        )


def check_shared_storage(runs_url: str) -> None:
    """Fail when checkpoints would go to a local path while the Ray cluster has more than one node.

    Each worker writes to its own node's disk: a lost node takes its checkpoints with it, and the
    nodes that resume cannot read them.
    """
    import ray

    if not storage.resolve(runs_url).is_local:
        return
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) > 1:
        raise ValueError(
            f"the run storage {runs_url} (data.runs) is a local path, but the Ray cluster has {len(nodes)} nodes: "
            "a node that is lost takes its disk and the checkpoints on it with it, and the other nodes cannot "
            "read them to resume. Set data.runs to an s3:// or gs:// URL every node reaches."
        )


def storage_target(url: str) -> tuple[str, Any]:
    """(storage_path, pyarrow filesystem or None) of a runs URL for ``RunConfig``."""
    loc = storage.resolve(url)
    if not loc.is_s3:
        os.makedirs(loc.path, exist_ok=True)
        return loc.path, None
    from pyarrow import fs

    endpoint = storage.s3_endpoint()
    options: dict[str, Any] = {"region": os.environ.get("AWS_REGION") or "us-east-1"}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        options.update(endpoint_override=host, scheme=scheme, force_virtual_addressing=False)
    return loc.path, fs.S3FileSystem(**options)


#: The file Ray Train keeps in a run folder to find its reported checkpoints again.
SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"


def refuse_earlier_run(runs_url: str, name: str, resume_from: str | None) -> None:
    """Fail if the run folder holds an earlier run's checkpoints and this job does not resume it.

    Ray Train would silently continue from them: a finished earlier run (other data, other config)
    would be taken for this job's result.
    """
    folder = storage.join(runs_url, name)
    if resume_from is None and storage.exists(storage.join(folder, SNAPSHOT_FILE)):
        raise FileExistsError(
            f"{folder} already holds the checkpoints of an earlier run: resume it with --resume-from "
            f"<one of its checkpoint_* folders>, give this run another run_name, or remove the folder"
        )


def worker_threads(cfg: TrainConfig) -> int:
    """torch intra-op threads of each worker: ``threads_per_worker``, else the worker's whole CPUs (at least 1).

    Fixed by the config, not by the cores a node happens to have: a float reduction split over another
    number of threads sums in another order, and the run would no longer repeat to the bit.
    """
    return cfg.threads_per_worker or max(1, int(cfg.cpus_per_worker))


def ordered_ingest() -> Any:
    """Ray Train's dataset config with Ray Data's order preserved.

    Reader actors finish blocks in whatever order they like; with ``preserve_order`` the stream keeps
    the epoch table's order and ``streaming_split`` deals the blocks out to the workers in that order
    (least rows first, locality hints ignored), so each worker sees the same batches in every run.
    """
    from ray.data import DataContext
    from ray.train import DataConfig

    options = copy.deepcopy(DataContext.get_current().execution_options)
    options.preserve_order = True
    return DataConfig(execution_options=options)


def scaling(cfg: TrainConfig) -> Any:
    """Ray Train's ``ScalingConfig`` of the ``train`` section: a fixed or an elastic (``(min, max)``) group."""
    from ray.train import ScalingConfig

    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = 1
    if isinstance(cfg.num_workers, int):
        return ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker=resources)
    return ScalingConfig(
        num_workers=cfg.num_workers,
        use_gpu=cfg.use_gpu,
        resources_per_worker=resources,
        elastic_resize_monitor_interval_s=cfg.resize_check_s,
    )


def fit(spec: WorkerSpec, datasets: dict[str, Any], cfg: TrainConfig, runs_url: str, name: str) -> Any:
    """Run `train_worker` with ``cfg.num_workers`` workers; returns the Ray Train ``Result``.

    Checkpoints go to ``<runs_url>/<name>`` (the latest is kept, to resume; every model's best
    epochs are kept by the workers, `soilnet.training.best`), and a failed worker group restarts
    up to ``cfg.max_failures`` times from the latest checkpoint (an elastic group on the workers
    the cluster then holds).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    ensure_ray()
    check_shared_storage(runs_url)
    check_worker_range(cfg.min_workers, cfg.max_workers, spec.batch_size)
    check_resources(cfg)
    path, filesystem = storage_target(runs_url)
    spec = dataclasses.replace(spec, threads=worker_threads(cfg))
    trainer = TorchTrainer(
        train_worker,
        train_loop_config=spec,
        scaling_config=scaling(cfg),
        run_config=RunConfig(
            name=name,
            storage_path=path,
            storage_filesystem=filesystem,
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
        ),
        datasets=datasets,
        dataset_config=ordered_ingest(),
    )
    log.info(
        "Ray Train %s: %s workers, %d model(s) x %d epochs x %s steps",
        name,
        cfg.num_workers,
        len(spec.models),
        spec.epochs,
        "/".join(str(m.steps_per_epoch) for m in spec.models),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    return result
