"""MLflow runs addressed by id: tracking URI resolution, flattened parameters, metrics, artifacts.

Runs are handled through `mlflow.MlflowClient` and an explicit run id, never the global active
run, so the driver and the rank-0 Ray Train worker can log to the same run, and a run resumed
from a checkpoint (which stores the id) continues where it stopped. Only rank 0 logs.

A tracking server that is down at the start fails the job within ``start_timeout_s``; one that goes
down mid-run costs no training: calls are spooled to a local file and delivered when it is back
(`soilnet.tracking.spool`, ``soilnet tracking flush``), or fail at once, as ``on_unavailable`` says.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from soilnet import storage
from soilnet.redaction import redact_userinfo, usable_uri
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.datasets import TRAINING, InputDataset, send_inputs
from soilnet.tracking.outage import (
    TrackingUnavailableError,
    bounded_requests,
    is_unavailable,
    retry_while_unavailable,
)
from soilnet.tracking.spool import Spool

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
            flat[name] = redact_userinfo(str(value))[:MAX_PARAM_LENGTH]
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
    """Logging into one MLflow run by tracking URI and run id; picklable (URI, run id, config, spool folder).

    A tracking server that cannot be reached is handled as ``cfg.on_unavailable`` says: 'spool' keeps each
    call in a local spool file (see `soilnet.tracking.spool`) that the next call which reaches the server
    delivers first, in order; 'fail' raises `TrackingUnavailableError`. Calls are bounded by
    ``cfg.request_timeout_s`` (MLflow's own HTTP retries are off during them).
    """

    def __init__(self, uri: str, run_id: str, cfg: TrackingConfig | None = None, spool_dir: str | None = None) -> None:
        self.uri, self.run_id = uri, run_id
        if redact_userinfo(uri) != uri:  # MLflow prints run URLs to stdout, credentials included
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        self.cfg = cfg if cfg is not None else TrackingConfig()
        self.spool_dir = spool_dir or spool_folder(self.cfg, None)
        self._spooling = False  # this process spools this run now (warned once per outage)

    def __reduce__(self) -> tuple[type[RunTracker], tuple[str, str, TrackingConfig, str]]:
        return RunTracker, (self.uri, self.run_id, self.cfg, self.spool_dir)

    @property
    def client(self) -> Any:
        """The MLflow client of the tracking URI."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    @property
    def spool(self) -> Spool:
        """This process's spool file of the run."""
        return Spool.for_process(self.spool_dir, self.run_id)

    @classmethod
    def for_run(cls, cfg: TrackingConfig, workspace: str, run_id: str, uri: str | None = None) -> RunTracker:
        """The tracker of an existing run under `uri` (default: the configured tracking URI)."""
        return cls(uri or tracking_uri(cfg, workspace), run_id, cfg, spool_folder(cfg, workspace))

    @classmethod
    def start(
        cls,
        cfg: TrackingConfig,
        workspace: str,
        run_name: str,
        parent: RunTracker | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RunTracker:
        """Create a run (nested under `parent` if given) in the configured experiment.

        An unreachable server is waited for up to ``cfg.start_timeout_s`` ('spool') or tried once ('fail');
        then `TrackingUnavailableError` names the URI and the settings to change.
        """
        from mlflow import MlflowClient

        uri = parent.uri if parent else tracking_uri(cfg, workspace)
        all_tags = {**system_info(), **(tags or {})}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent.run_id

        def create() -> str:
            client = MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(cfg.experiment)
            if experiment is None:
                experiment_id = client.create_experiment(
                    cfg.experiment, artifact_location=artifact_root(cfg, workspace, uri)
                )
            else:
                experiment_id = experiment.experiment_id
            return client.create_run(experiment_id, run_name=run_name, tags=all_tags).info.run_id

        wait = cfg.start_timeout_s if cfg.on_unavailable == "spool" else 0.0
        try:
            with bounded_requests(cfg.request_timeout_s):
                run_id = retry_while_unavailable(create, wait, cfg.retry_s, f"creating MLflow run {run_name!r}")
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            advice = (
                f"waited tracking.start_timeout_s = {wait:g} s; raise it to wait longer"
                if wait
                else "set tracking.on_unavailable: spool to wait for it up to tracking.start_timeout_s"
            )
            raise TrackingUnavailableError(
                f"MLflow tracking server {redact_userinfo(uri)} is unreachable: cannot create run {run_name!r} "
                f"(start it, or point tracking.uri / $MLFLOW_TRACKING_URI at a running one; {advice})"
            ) from exc
        log.info("MLflow run %s (%s) in experiment %r at %s", run_name, run_id, cfg.experiment, redact_userinfo(uri))
        return cls(uri, run_id, cfg, spool_folder(cfg, workspace))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (flattened) parameters; values already logged with the same value are skipped."""
        self._call({"op": "log_params", "params": flatten_params(params)})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log finite numeric metrics at `step`."""
        now = int(time.time() * 1000)
        values = [
            [k, float(v), now, step or 0]
            for k, v in metrics.items()
            if isinstance(v, int | float) and math.isfinite(float(v))
        ]
        if values:
            self._call({"op": "log_metrics", "metrics": values})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (credentials in URLs masked)."""
        self._call({"op": "set_tags", "tags": {key: redact_userinfo(str(value)) for key, value in tags.items()}})

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store a text artifact (configs, tables; credentials in URLs masked)."""
        self._call({"op": "log_text", "text": redact_userinfo(text), "artifact_file": artifact_file})

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Store a matplotlib figure as an image artifact (format from the file suffix)."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format=Path(artifact_file).suffix.lstrip(".") or "png")
        self._call(
            {"op": "log_bytes", "data": base64.b64encode(buffer.getvalue()).decode(), "artifact_file": artifact_file}
        )

    def log_inputs(self, datasets: Sequence[InputDataset], context: str = TRAINING) -> None:
        """Record what the run read (points table, cubes) as MLflow dataset inputs with a context tag."""
        self._call({"op": "log_inputs", "datasets": [d.record() for d in datasets], "context": context})

    def log_folder(self, url: str, artifact_path: str) -> None:
        """Upload every file of a folder (local path or s3:// URL) under `artifact_path` (read at delivery)."""
        self._call({"op": "log_folder", "url": url, "artifact_path": artifact_path})

    def finish(self, status: str = "FINISHED") -> None:
        """Deliver the run's spools (every process on this machine), then mark it FINISHED, FAILED or KILLED.

        'spool': waits up to ``cfg.finish_timeout_s`` for the server; if it is still unreachable, the spool
        (status included) is left on disk and an error says how to deliver it (``soilnet tracking flush``).
        """
        self._settle(self._record({"op": "set_terminated", "status": status, "end_time": int(time.time() * 1000)}))

    def flush(self) -> bool:
        """Deliver the run's spools (every process on this machine) like `finish`, without ending the run.

        Returns True if nothing is left to deliver.
        """
        return self._settle(None)

    def _settle(self, last: dict[str, Any] | None) -> bool:
        """Deliver every spool of the run, then the `last` call; wait for the server, else leave and report them."""
        wait = self.cfg.finish_timeout_s if self.cfg.on_unavailable == "spool" else 0.0

        def deliver_all() -> None:
            for spool in Spool.of_run(self.spool_dir, self.run_id):
                spool.replay(self._deliver)
            if last is not None:
                self._deliver([last])

        try:
            with bounded_requests(self.cfg.request_timeout_s):
                retry_while_unavailable(deliver_all, wait, self.cfg.retry_s, f"delivering MLflow run {self.run_id}")
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if self.cfg.on_unavailable == "fail":
                raise self._unreachable(last["op"] if last else "flush") from exc
            if last is not None:
                self.spool.append(last)
            waiting = sum(len(spool.records()) for spool in Spool.of_run(self.spool_dir, self.run_id))
            log.error(
                "MLflow tracking server %s still unreachable after %g s: %d tracking calls of run %s%s wait in %s. "
                "Deliver them once the server is back with: soilnet tracking flush %s",
                redact_userinfo(self.uri),
                wait,
                waiting,
                self.run_id,
                f" (its end, {last['status']}, included)" if last else "",
                self.spool_dir,
                self.spool_dir,
            )
            return False
        self._spooling = False
        return True

    def _record(self, call: dict[str, Any]) -> dict[str, Any]:
        """A tracking call as a spool record: the call plus run, URI and the time it was made."""
        return {"run_id": self.run_id, "uri": redact_userinfo(self.uri), "time": int(time.time() * 1000), **call}

    def _call(self, call: dict[str, Any]) -> None:
        """Deliver this process's spool (if any) then `call`; spool it or fail if the server is unreachable."""
        record = self._record(call)
        spool = self.spool
        try:
            with bounded_requests(self.cfg.request_timeout_s):
                delivered = spool.replay(self._deliver)
                self._deliver([record])
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if self.cfg.on_unavailable == "fail":
                raise self._unreachable(call["op"]) from exc
            spool.append(record)
            if not self._spooling:
                self._spooling = True
                log.warning(
                    "MLflow tracking server %s unreachable: training goes on, run %s's tracking calls are spooled "
                    "to %s and delivered when the server answers again (%s)",
                    redact_userinfo(self.uri),
                    self.run_id,
                    spool.path,
                    exc,
                )
            return
        if delivered:
            log.info(
                "MLflow tracking server %s is back: delivered %d spooled calls of run %s",
                redact_userinfo(self.uri),
                delivered,
                self.run_id,
            )
        self._spooling = False

    def _unreachable(self, op: str) -> TrackingUnavailableError:
        """The error of a call that found the server unreachable in 'fail' mode."""
        return TrackingUnavailableError(
            f"MLflow tracking server {redact_userinfo(self.uri)} is unreachable: {op} of run {self.run_id} failed "
            "(tracking.on_unavailable is 'fail'; 'spool' keeps training and delivers the calls later)"
        )

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        """Make the recorded calls, in order; consecutive metrics go in as few requests as possible."""
        from mlflow.entities import Metric

        client = self.client
        metrics: list[Any] = []
        for record in records:
            if record["op"] == "log_metrics":
                metrics += [Metric(key, value, stamp, step) for key, value, stamp, step in record["metrics"]]
                continue
            _send_metrics(client, self.run_id, metrics)
            metrics = []
            sender = SENDERS.get(record["op"])
            if sender is None:
                raise ValueError(f"unknown tracking call {record['op']!r} in a spool record of run {self.run_id}")
            sender(client, self.run_id, record)
        _send_metrics(client, self.run_id, metrics)

    def metrics(self) -> dict[str, float]:
        """The latest value of every metric of the run."""
        return dict(self.client.get_run(self.run_id).data.metrics)


def spool_folder(cfg: TrackingConfig, workspace: str | None) -> str:
    """Where spool files go: ``cfg.spool_dir``, else ``<workspace>/mlflow-spool`` (local), else a temp folder."""
    if cfg.spool_dir:
        return str(Path(cfg.spool_dir).expanduser())
    if workspace:
        loc = storage.resolve(workspace)
        if loc.is_local:
            return str(Path(loc.path) / "mlflow-spool")
    return str(Path(tempfile.gettempdir()) / "soilnet-mlflow-spool")


def flush_spool(spool: Spool, cfg: TrackingConfig, uri: str | None = None) -> int:
    """Deliver a leftover spool file to its run (at `uri`, default the URI it recorded); returns the calls sent.

    Waits up to ``cfg.finish_timeout_s`` for the server, then raises `TrackingUnavailableError` (the file stays).
    """
    records = spool.records()
    if not records:
        return spool.replay(lambda _: None)  # nothing left to send: remove the emptied file
    target = uri or usable_uri(records[0]["uri"]) or cfg.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not target:
        raise ValueError(
            f"{spool.path}: its tracking URI was recorded without credentials ({records[0]['uri']}); "
            "give the real one with --uri, tracking.uri or $MLFLOW_TRACKING_URI"
        )
    tracker = RunTracker(target, records[0]["run_id"], cfg, str(spool.path.parent))
    try:
        with bounded_requests(cfg.request_timeout_s):
            return retry_while_unavailable(
                lambda: spool.replay(tracker._deliver), cfg.finish_timeout_s, cfg.retry_s, f"flushing {spool.path}"
            )
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise TrackingUnavailableError(
            f"MLflow tracking server {redact_userinfo(target)} is unreachable: {spool.path} keeps its "
            f"{len(spool.records())} calls of "
            f"run {tracker.run_id}; flush again once the server is back"
        ) from exc


def _send_metrics(client: Any, run_id: str, metrics: list[Any]) -> None:
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


def _send_params(client: Any, run_id: str, record: dict[str, Any]) -> None:
    from mlflow.entities import Param

    logged = client.get_run(run_id).data.params
    new = [Param(key, value) for key, value in record["params"].items() if key not in logged]
    for start in range(0, len(new), 100):
        client.log_batch(run_id, params=new[start : start + 100])


def _send_tags(client: Any, run_id: str, record: dict[str, Any]) -> None:
    from mlflow.entities import RunTag

    tags = [RunTag(key, value) for key, value in record["tags"].items()]
    for start in range(0, len(tags), 100):
        client.log_batch(run_id, tags=tags[start : start + 100])


def _send_text(client: Any, run_id: str, record: dict[str, Any]) -> None:
    client.log_text(run_id, record["text"], record["artifact_file"])


def _send_bytes(client: Any, run_id: str, record: dict[str, Any]) -> None:
    artifact = PurePosixPath(record["artifact_file"])
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / artifact.name
        local.write_bytes(base64.b64decode(record["data"]))
        client.log_artifact(run_id, str(local), str(artifact.parent) if artifact.parent.name else None)


def _send_folder(client: Any, run_id: str, record: dict[str, Any]) -> None:
    loc = storage.resolve(record["url"])
    if loc.is_local:
        client.log_artifacts(run_id, loc.path, record["artifact_path"])
        return
    with tempfile.TemporaryDirectory() as tmp:
        loc.fs.get(loc.path.rstrip("/") + "/", tmp, recursive=True)
        client.log_artifacts(run_id, tmp, record["artifact_path"])


def _send_terminated(client: Any, run_id: str, record: dict[str, Any]) -> None:
    client.set_terminated(run_id, record["status"], record["end_time"])


#: How each recorded call other than ``log_metrics`` (batched by `RunTracker._deliver`) is made.
SENDERS: dict[str, Callable[[Any, str, dict[str, Any]], None]] = {
    "log_params": _send_params,
    "set_tags": _send_tags,
    "log_text": _send_text,
    "log_bytes": _send_bytes,
    "log_folder": _send_folder,
    "log_inputs": lambda client, run_id, record: send_inputs(client, run_id, record["datasets"], record["context"]),
    "set_terminated": _send_terminated,
}
