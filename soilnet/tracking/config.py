"""Configuration of MLflow tracking: where runs go, the experiment, the registered model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator

from soilnet.configbase import StrictModel


class TrackingConfig(StrictModel):
    """Where runs, metrics and models are tracked (MLflow)."""

    uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else a SQLite file "
        "<workspace>/mlruns.db (<cwd>/mlruns.db for an s3:// workspace).",
    )
    artifacts: str | None = Field(
        None,
        description="Artifact location of new experiments (local path or s3://); default <workspace>/mlartifacts. "
        "Ignored by a tracking server that proxies artifacts.",
    )
    experiment: str = Field("soilnet", min_length=1, description="MLflow experiment name.")
    registered_model: str | None = Field(
        None,
        min_length=1,
        description="Registered model name of promote; None: one name per target, soilnet-<target> "
        "(e.g. soilnet-soc_g_kg; several targets joined by '-'), so a pH model never competes with a SOC one.",
    )
    champion_alias: str = Field("champion", min_length=1, description="Alias the map job loads.")
    promote_metric: Literal["rmse", "mae", "me", "r2", "ccc", "rpiq"] = Field(
        "rmse", description="Cross-validated metric (mean over folds) that decides promotion ('me': |bias|)."
    )
    promote_class_metric: Literal["accuracy", "balanced_accuracy", "macro_f1", "log_loss"] = Field(
        "macro_f1",
        description="Cross-validated metric (mean over folds) that decides promotion when the primary target is "
        "categorical (binary or multiclass); log_loss: lower is better.",
    )

    def ranking_metric(self, categorical: bool) -> str:
        """The metric that ranks a model whose primary target is categorical (or continuous)."""
        return self.promote_class_metric if categorical else self.promote_metric

    on_unavailable: Literal["spool", "fail"] = Field(
        "spool",
        description="When the tracking server cannot be reached. 'spool': wait up to start_timeout_s for it to "
        "create a run; mid-run, keep training and append each tracking call to a local spool file that is "
        "delivered (in order, with original steps and timestamps) as soon as the server answers again, at the "
        "latest by finish or by `soilnet tracking flush`. 'fail': stop with an error naming the URI.",
    )
    start_timeout_s: float = Field(
        120.0,
        ge=0,
        description="Seconds a job waits (retrying with backoff) for an unreachable server before it fails to "
        "create its run ('spool' only: 'fail' tries once).",
    )
    finish_timeout_s: float = Field(
        30.0,
        ge=0,
        description="Seconds a finishing run waits (retrying) to deliver its spool before it leaves the spool "
        "file for `soilnet tracking flush` ('spool' only).",
    )
    retry_s: float = Field(
        1.0, gt=0, description="First pause between attempts while waiting for the server; doubles, up to 15 s."
    )
    request_timeout_s: int = Field(
        10,
        ge=1,
        description="Timeout of one HTTP request to the tracking server; MLflow's own HTTP retries are off "
        "during tracking calls, so a dead server costs at most this much per call.",
    )
    spool_dir: str | None = Field(
        None,
        description="Local folder of spool files (one per run and process: <run_id>.<pid>.jsonl); default "
        "<workspace>/mlflow-spool for a local workspace, else <tmp>/soilnet-mlflow-spool.",
    )

    def model_name(self, targets: Sequence[str]) -> str:
        """The registered model name of a model predicting `targets`: ``registered_model`` or soilnet-<targets>."""
        if self.registered_model:
            return self.registered_model
        if not targets:
            raise ValueError("a registered model name needs the model's targets (or tracking.registered_model)")
        return "soilnet-" + "-".join(targets)

    @field_validator("spool_dir")
    @classmethod
    def _local_spool(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise ValueError(f"spool_dir must be a local folder (it is appended to line by line), not {value!r}")
        return value
