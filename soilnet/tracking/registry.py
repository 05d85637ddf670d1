"""The MLflow model registry: fine-tuned bundles as model versions, and the ``champion`` alias.

A cross-validation run logs its bundle (all fold models, an ensemble) under the artifact path
``bundle`` and records its URL in the tag ``soilnet.bundle_url``, its metrics as
``cv_<metric>_mean`` and its inputs as MLflow datasets. `promote` logs that bundle as an MLflow
Model (a pyfunc, `soilnet.tracking.mlflow_model`), registers it as a new version of the target's
model (``soilnet-<target>`` by default, `TrackingConfig.model_name`) and moves the champion alias
only when the version beats the current champion on the configured metric (``promote_metric``, or
``promote_class_metric`` when the bundle's primary target is categorical); a run on other
targets, points or folds than the champion is refused. `load_champion` reads the champion's bundle.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soilnet import storage
from soilnet.evaluation.metrics import is_better
from soilnet.recipes.bundle import ModelBundle, load_bundle
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.lookups import find_alias, find_run
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


#: What makes two runs comparable: the same targets, points table and fold definition.
IDENTITY_FIELDS = ("targets", "points table", "fold definition")


def training_identity(run) -> dict[str, str]:
    """What a cross-validation run predicted, from which points, on which folds (empty: not recorded)."""
    params = run.data.params
    folds = {k: v for k, v in sorted(params.items()) if k.startswith("finetune.folds.")}
    points = [i.dataset.digest for i in run.inputs.dataset_inputs if i.dataset.name == "points"]
    return {
        "targets": params.get("finetune.target", ""),
        "points table": points[0] if points else "",
        "fold definition": json.dumps(folds, sort_keys=True) if folds else "",
    }


def check_comparable(candidate, champion, name: str, version: str) -> None:
    """Refuse to rank `candidate` against the champion run when they differ in targets, points or folds."""
    mine, theirs = training_identity(candidate), training_identity(champion)
    differ = [f for f in IDENTITY_FIELDS if mine[f] and theirs[f] and mine[f] != theirs[f]]
    if differ:
        detail = "; ".join(f"{f}: {mine[f]} vs {theirs[f]}" for f in differ)
        raise ValueError(
            f"run {candidate.info.run_id} cannot be compared with {name} version {version} (the champion, run "
            f"{champion.info.run_id}): {detail}. Register it under another name (tracking.registered_model)"
        )
    unknown = [f for f in IDENTITY_FIELDS if not (mine[f] and theirs[f])]
    if unknown:
        log.warning("%s: %s not recorded for run %s or the champion; compared anyway", name, unknown, version)


def run_bundle(client, run, folder: str) -> str:
    """A local copy of a cross-validation run's bundle: from its storage URL if reachable, else its artifacts."""
    url = run.data.tags.get(BUNDLE_URL_TAG, "")
    if url and storage.exists(storage.join(url, "meta.json")):
        loc = storage.resolve(url)
        target = str(Path(folder) / BUNDLE_ARTIFACT)
        loc.fs.get(loc.path.rstrip("/") + "/", target + "/", recursive=True)
        return target
    return client.download_artifacts(run.info.run_id, BUNDLE_ARTIFACT, folder)


def log_bundle_model(client, run, bundle_folder: str, name: str) -> Any:
    """Log the bundle as an MLflow Model (pyfunc) of the run; returns the (finalised) logged model."""
    from mlflow.entities import LoggedModelStatus

    from soilnet.tracking.mlflow_model import save_bundle_model

    model = client.create_logged_model(
        run.info.experiment_id, name=name, source_run_id=run.info.run_id, model_type="soilnet-bundle"
    )
    with tempfile.TemporaryDirectory() as tmp:
        client.log_model_artifacts(model.model_id, str(save_bundle_model(bundle_folder, f"{tmp}/model")))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model


def promote(cfg: TrackingConfig, workspace: str, run_id: str) -> Promotion:
    """Register the bundle of cross-validation run `run_id` as an MLflow Model; move the champion alias if it wins.

    The name is ``cfg.model_name(targets of the bundle)``; a run trained on other targets, points or
    folds than the champion is refused, not ranked.
    """
    tracker = RunTracker.for_run(cfg, workspace, run_id)
    client = tracker.client
    run = find_run(client, run_id)
    keys = [cv_metric_key(cfg.promote_metric), cv_metric_key(cfg.promote_class_metric)]
    if not any(key in run.data.metrics for key in keys):
        raise ValueError(
            f"run {run_id} has no metric {keys[0]!r} (nor {keys[1]!r} for a categorical primary target): "
            "promote a finished cross-validation run"
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = run_bundle(client, run, tmp)
        meta = load_bundle(folder).meta
        targets = meta.targets
        metric = cfg.ranking_metric(meta.outputs()[0].categorical)
        key = cv_metric_key(metric)
        if key not in run.data.metrics:
            raise ValueError(f"run {run_id} of primary target {targets[0]!r} has no metric {key!r} to rank it by")
        score = float(run.data.metrics[key])
        name = cfg.model_name(targets)
        previous = current_champion(client, name, cfg.champion_alias)
        if previous is not None:
            champion = client.get_model_version_by_alias(name, cfg.champion_alias)
            check_comparable(run, find_run(client, champion.run_id), name, champion.version)
        _ensure_registered_model(client, name)
        model = log_bundle_model(client, run, folder, name)
    version = client.create_model_version(
        name,
        source=model.artifact_location,
        run_id=run_id,
        model_id=model.model_id,
        tags={
            "cv_metric": metric,
            "cv_score": str(score),
            BUNDLE_URL_TAG: run.data.tags.get(BUNDLE_URL_TAG, ""),
            "soilnet.targets": ",".join(targets),
        },
        description=f"cross-validated {metric} {score:.4g} of {', '.join(targets)}",
    )
    wins = previous is None or math.isnan(previous[1]) or is_better(metric, score, previous[1])
    if wins:
        client.set_registered_model_alias(name, cfg.champion_alias, version.version)
    log.info(
        "%s version %s (%s %.4g) %s the champion %s",
        name,
        version.version,
        metric,
        score,
        "replaces" if wins else "does not beat",
        previous,
    )
    return Promotion(
        name,
        version.version,
        metric,
        score,
        previous[0] if previous else None,
        previous[1] if previous else None,
        wins,
    )


def load_champion(cfg: TrackingConfig, workspace: str, targets: list[str]) -> ModelBundle:
    """The bundle of the version of `targets`' registered model that holds the champion alias.

    Read from its storage URL when that is reachable, else downloaded from the registry.
    """
    from mlflow import MlflowClient

    from soilnet.tracking.mlflow_model import bundle_in_model

    client = MlflowClient(tracking_uri=tracking_uri(cfg, workspace))
    version = find_alias(client, cfg.model_name(targets), cfg.champion_alias)
    url = version.tags.get(BUNDLE_URL_TAG)
    if url and storage.exists(storage.join(url, "meta.json")):
        return load_bundle(url)
    with tempfile.TemporaryDirectory() as tmp:
        import mlflow.artifacts

        local = mlflow.artifacts.download_artifacts(
            artifact_uri=version.source, dst_path=tmp, tracking_uri=client.tracking_uri
        )
        return load_bundle(str(bundle_in_model(local)))
