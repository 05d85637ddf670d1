"""The MLflow model registry: fine-tuned bundles as model versions, and the ``champion`` alias.

A cross-validation run logs its bundle (all fold models, an ensemble) under the artifact path
``bundle`` and records its URL in the tag ``soilnet.bundle_url`` and its metrics as
``cv_<metric>_mean``. `promote` registers that bundle as a new version and moves the champion
alias only when the version beats the current champion on the configured metric. The map job
loads the champion with `load_champion`.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass

from soilnet import storage
from soilnet.evaluation.metrics import is_better
from soilnet.recipes.bundle import ModelBundle, load_bundle
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import RunTracker, tracking_uri

log = logging.getLogger(__name__)

BUNDLE_ARTIFACT = "bundle"
BUNDLE_URL_TAG = "soilnet.bundle_url"


def cv_metric_key(metric: str) -> str:
    """The run metric holding the cross-validated mean of `metric`."""
    return f"cv_{metric}_mean"


@dataclass(frozen=True)
class Promotion:
    """Outcome of `promote`: the new version, its score, the previous champion's and the decision."""

    model: str
    version: str
    metric: str
    candidate: float
    previous_version: str | None
    previous: float | None
    promoted: bool


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="soilnet fold-model ensembles (model bundles)")


def current_champion(client, name: str, alias: str) -> tuple[str, float] | None:
    """(version, score) of the model version holding the alias, or None when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return version.version, float(version.tags.get("cv_score", "nan"))


def promote(cfg: TrackingConfig, workspace: str, run_id: str) -> Promotion:
    """Register the bundle of cross-validation run `run_id`; move the champion alias if it wins."""
    tracker = RunTracker.for_run(cfg, workspace, run_id)
    client = tracker.client
    run = client.get_run(run_id)
    key = cv_metric_key(cfg.promote_metric)
    if key not in run.data.metrics:
        raise ValueError(f"run {run_id} has no metric {key!r}: promote a finished cross-validation run")
    score = float(run.data.metrics[key])
    bundle_url = run.data.tags.get(BUNDLE_URL_TAG, "")
    _ensure_registered_model(client, cfg.registered_model)
    version = client.create_model_version(
        cfg.registered_model,
        source=f"{run.info.artifact_uri}/{BUNDLE_ARTIFACT}",
        run_id=run_id,
        tags={"cv_metric": cfg.promote_metric, "cv_score": str(score), BUNDLE_URL_TAG: bundle_url},
        description=f"cross-validated {cfg.promote_metric} {score:.4g}",
    )
    previous = current_champion(client, cfg.registered_model, cfg.champion_alias)
    wins = previous is None or math.isnan(previous[1]) or is_better(cfg.promote_metric, score, previous[1])
    if wins:
        client.set_registered_model_alias(cfg.registered_model, cfg.champion_alias, version.version)
    log.info(
        "%s version %s (%s %.4g) %s the champion %s",
        cfg.registered_model,
        version.version,
        cfg.promote_metric,
        score,
        "replaces" if wins else "does not beat",
        previous,
    )
    return Promotion(
        cfg.registered_model,
        version.version,
        cfg.promote_metric,
        score,
        previous[0] if previous else None,
        previous[1] if previous else None,
        wins,
    )


def load_champion(cfg: TrackingConfig, workspace: str) -> ModelBundle:
    """The bundle of the model version holding the champion alias.

    Read from its storage URL when that is reachable, else downloaded from the run's artifacts.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(cfg, workspace))
    if current_champion(client, cfg.registered_model, cfg.champion_alias) is None:
        raise ValueError(f"registered model {cfg.registered_model!r} has no {cfg.champion_alias!r} alias yet")
    version = client.get_model_version_by_alias(cfg.registered_model, cfg.champion_alias)
    url = version.tags.get(BUNDLE_URL_TAG)
    if url and storage.exists(storage.join(url, "meta.json")):
        return load_bundle(url)
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(version.run_id, BUNDLE_ARTIFACT, tmp)
        return load_bundle(local)
