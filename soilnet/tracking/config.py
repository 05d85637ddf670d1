"""Configuration of MLflow tracking: where runs go, the experiment, the registered model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
    registered_model: str = Field("soilnet-soc", min_length=1, description="Registered model name of promote.")
    champion_alias: str = Field("champion", min_length=1, description="Alias the map job loads.")
    promote_metric: Literal["rmse", "mae", "me", "r2", "ccc", "rpiq"] = Field(
        "rmse", description="Cross-validated metric (mean over folds) that decides promotion ('me': |bias|)."
    )
