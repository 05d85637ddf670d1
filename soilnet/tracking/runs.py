"""MLflow runs addressed by id: tracking URI resolution, flattened parameters, metrics, artifacts.

Runs are handled through `mlflow.MlflowClient` and an explicit run id, never the global active
run, so the driver and the rank-0 Ray Train worker can log to the same run, and a run resumed
from a checkpoint (which stores the id) continues where it stopped. Only rank 0 logs.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from soilnet import storage
from soilnet.tracking.config import TrackingConfig

log = logging.getLogger(__name__)

#: MLflow's limit on the length of a parameter value.
MAX_PARAM_LENGTH = 6000


def tracking_uri(cfg: TrackingConfig, workspace: str) -> str:
    """The tracking URI: the config, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<workspace>/mlruns.db``.

    An ``s3://`` workspace cannot hold a SQLite file: its default database is ``./mlruns.db``.
    """
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = Path.cwd() if storage.is_remote(workspace) else Path(storage.resolve(workspace).path)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlruns.db'}"


def artifact_root(cfg: TrackingConfig, workspace: str, uri: str) -> str | None:
    """Artifact location of new experiments; None lets a tracking server choose (proxied artifacts)."""
    if cfg.artifacts:
        return storage.resolve(cfg.artifacts).url
    if uri.startswith(("http://", "https://")):
        return None
    return storage.join(storage.resolve(workspace).url, "mlartifacts")


def ui_command(uri: str) -> str:
    """The shell command that opens the MLflow UI on a tracking URI."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}"


def flatten_params(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as ``a.b.c -> str(value)`` (lists kept whole), values cut to MLflow's limit."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_LENGTH]
    return flat


def system_info() -> dict[str, str]:
    """Versions and hardware of the process, logged as tags of every run."""
    import mlflow
    import ray
    import torch

    info = {
        "sys.python": platform.python_version(),
        "sys.platform": platform.platform(),
        "sys.cpus": str(os.cpu_count()),
        "sys.torch": torch.__version__,
        "sys.ray": ray.__version__,
        "sys.mlflow": mlflow.__version__,
        "sys.cuda": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        info["sys.gpu"] = torch.cuda.get_device_name(0)
        info["sys.gpus"] = str(torch.cuda.device_count())
    return info


class RunTracker:
    """Logging into one MLflow run, by tracking URI and run id (picklable: only the two strings)."""

    def __init__(self, uri: str, run_id: str) -> None:
        self.uri, self.run_id = uri, run_id

    def __reduce__(self) -> tuple[type[RunTracker], tuple[str, str]]:
        return RunTracker, (self.uri, self.run_id)

    @property
    def client(self) -> Any:
        """The MLflow client of the tracking URI."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    @classmethod
    def for_run(cls, cfg: TrackingConfig, workspace: str, run_id: str) -> RunTracker:
        """The tracker of an existing run under the configured tracking URI."""
        return cls(tracking_uri(cfg, workspace), run_id)

    @classmethod
    def start(
        cls,
        cfg: TrackingConfig,
        workspace: str,
        run_name: str,
        parent: RunTracker | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RunTracker:
        """Create a run (nested under `parent` if given) in the configured experiment."""
        from mlflow import MlflowClient

        uri = parent.uri if parent else tracking_uri(cfg, workspace)
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(cfg.experiment)
        if experiment is None:
            experiment_id = client.create_experiment(
                cfg.experiment, artifact_location=artifact_root(cfg, workspace, uri)
            )
        else:
            experiment_id = experiment.experiment_id
        all_tags = {**system_info(), **(tags or {})}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent.run_id
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        log.info("MLflow run %s (%s) in experiment %r at %s", run_name, run.info.run_id, cfg.experiment, uri)
        return cls(uri, run.info.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (flattened) parameters; values already logged with the same value are skipped."""
        from mlflow.entities import Param

        flat = flatten_params(params)
        logged = self.client.get_run(self.run_id).data.params
        new = [Param(k, v) for k, v in flat.items() if k not in logged]
        for start in range(0, len(new), 100):
            self.client.log_batch(self.run_id, params=new[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log finite numeric metrics at `step`."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [
            Metric(k, float(v), now, step or 0)
            for k, v in metrics.items()
            if isinstance(v, int | float) and math.isfinite(float(v))
        ]
        if values:
            self.client.log_batch(self.run_id, metrics=values)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags."""
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store a text artifact (configs, tables)."""
        self.client.log_text(self.run_id, text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Store a matplotlib figure as an image artifact."""
        self.client.log_figure(self.run_id, figure, artifact_file)

    def log_folder(self, url: str, artifact_path: str) -> None:
        """Upload every file of a folder (local path or s3:// URL) under `artifact_path`."""
        loc = storage.resolve(url)
        if not loc.is_s3:
            self.client.log_artifacts(self.run_id, loc.path, artifact_path)
            return
        with tempfile.TemporaryDirectory() as tmp:
            loc.fs.get(loc.path.rstrip("/") + "/", tmp, recursive=True)
            self.client.log_artifacts(self.run_id, tmp, artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        """Mark the run terminated (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(self.run_id, status)

    def metrics(self) -> dict[str, float]:
        """The latest value of every metric of the run."""
        return dict(self.client.get_run(self.run_id).data.metrics)
