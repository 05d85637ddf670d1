"""The registry on a real MLflow server: MLflow Models per target, the champion moved only on a comparable win."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.datasets import InputDataset
from soilnet.tracking.lookups import NotFoundError
from soilnet.tracking.registry import BUNDLE_ARTIFACT, BUNDLE_URL_TAG, load_champion, promote
from soilnet.tracking.runs import RunTracker
from tests.fixtures.tiny_models import (
    TINY_BANDS,
    TINY_MONTHS,
    TINY_PATCH_PX,
    TINY_VARIABLES,
    save_tiny_bundle,
    tiny_bundle,
)


def _cv_run(
    cfg: TrackingConfig, rmse: float, bundle: str, target: str = "soc_g_kg", points: str = "p1", metric: str = "rmse"
) -> str:
    """A finished cross-validation run: its metric, bundle artifact (its storage URL unreachable) and identity."""
    tracker = RunTracker.start(cfg, "unused", "cv")
    tracker.log_metrics({f"cv_{metric}_mean": rmse})
    tracker.log_params({"finetune": {"target": target, "folds": {"k": 3, "seed": 0}}})
    tracker.log_inputs([InputDataset("points", "s3://nowhere/points.parquet", points, 10, "rows")])
    tracker.log_folder(bundle, BUNDLE_ARTIFACT)
    tracker.set_tags({BUNDLE_URL_TAG: "s3://nowhere/bundle"})
    tracker.finish()
    return tracker.run_id


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny SOC bundle folder."""
    return save_tiny_bundle(str(tmp_path_factory.mktemp("bundle") / "bundle"))


def _cfg(server: str, **extra) -> TrackingConfig:
    return TrackingConfig(uri=server, experiment=f"e-{uuid.uuid4().hex[:6]}", **extra)


def test_champion_moves_only_when_the_cv_metric_improves(mlflow_server, bundle):
    from mlflow import MlflowClient

    cfg = _cfg(mlflow_server, registered_model=f"m-{uuid.uuid4().hex[:6]}")
    first = promote(cfg, "unused", _cv_run(cfg, 5.0, bundle))
    assert first.promoted and first.previous is None
    worse = promote(cfg, "unused", _cv_run(cfg, 6.0, bundle))
    assert not worse.promoted and worse.previous == 5.0
    better = promote(cfg, "unused", _cv_run(cfg, 4.0, bundle))
    assert better.promoted and better.previous_version == first.version
    client = MlflowClient(tracking_uri=mlflow_server)
    assert client.get_model_version_by_alias(cfg.registered_model, "champion").version == better.version
    assert len(client.search_model_versions(f"name='{cfg.registered_model}'")) == 3


def test_a_categorical_primary_target_is_ranked_by_the_class_metric(mlflow_server, tmp_path):
    from soilnet.recipes.bundle import save_bundle

    tiny = tiny_bundle()
    meta = tiny.meta.model_copy(
        update={"targets": ["permafrost"], "units": [""], "kinds": ["binary"], "classes": {"permafrost": ["no", "yes"]}}
    )
    bundle = save_bundle(str(tmp_path / "bundle"), tiny.recipe, tiny.models, tiny.stats, meta)
    cfg = _cfg(mlflow_server, registered_model=f"m-{uuid.uuid4().hex[:6]}")
    first = promote(cfg, "unused", _cv_run(cfg, 0.6, bundle, "permafrost", metric="macro_f1"))
    assert first.promoted and first.metric == "macro_f1"
    assert not promote(cfg, "unused", _cv_run(cfg, 0.5, bundle, "permafrost", metric="macro_f1")).promoted
    assert promote(cfg, "unused", _cv_run(cfg, 0.7, bundle, "permafrost", metric="macro_f1")).promoted
    with pytest.raises(ValueError, match="primary target 'permafrost' has no metric 'cv_macro_f1_mean'"):
        promote(cfg, "unused", _cv_run(cfg, 1.0, bundle, "permafrost"))  # only cv_rmse_mean


def test_promoting_a_run_without_cv_metrics_names_the_metric(mlflow_server):
    cfg = TrackingConfig(uri=mlflow_server, experiment="bad-runs")
    tracker = RunTracker.start(cfg, "unused", "not-cv")
    with pytest.raises(ValueError, match="no metric 'cv_rmse_mean'"):
        promote(cfg, "unused", tracker.run_id)


def test_each_target_gets_its_own_registered_model_by_default():
    assert TrackingConfig().model_name(["soc_g_kg"]) == "soilnet-soc_g_kg"
    assert TrackingConfig().model_name(["soc_g_kg", "ph_h2o"]) == "soilnet-soc_g_kg-ph_h2o"
    assert TrackingConfig(registered_model="mine").model_name(["ph_h2o"]) == "mine"


def test_the_champion_loads_as_a_pyfunc_that_predicts_like_the_bundle(mlflow_server, bundle, monkeypatch):
    import mlflow.pyfunc

    cfg = _cfg(mlflow_server, registered_model=f"m-{uuid.uuid4().hex[:6]}")
    promote(cfg, "unused", _cv_run(cfg, 5.0, bundle))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registered_model}@champion")
    inputs = model.metadata.signature.inputs.to_dict()
    assert [(i["name"], list(i["tensor-spec"]["shape"])) for i in inputs] == [
        ("image", [-1, len(TINY_BANDS), TINY_PATCH_PX, TINY_PATCH_PX]),
        ("climate", [-1, TINY_MONTHS, len(TINY_VARIABLES)]),
    ]
    assert [o["name"] for o in model.metadata.signature.outputs.to_dict()] == ["soc_g_kg"]
    assert model.metadata.saved_input_example_info is not None
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.uniform(0, 1, (3, len(TINY_BANDS), TINY_PATCH_PX, TINY_PATCH_PX)).astype(np.float32),
        "climate": rng.normal(0, 1, (3, TINY_MONTHS, len(TINY_VARIABLES))).astype(np.float32),
    }
    expected, _ = tiny_bundle().predict(batch["image"], batch["climate"])
    np.testing.assert_array_equal(model.predict(batch)["soc_g_kg"], expected[:, 0])
    loaded = load_champion(cfg, "unused", ["soc_g_kg"])
    np.testing.assert_array_equal(loaded.predict(batch["image"], batch["climate"])[0], expected)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"target": "ph_h2o"}, "targets"), ({"points": "p2"}, "points table")],
)
def test_promote_refuses_a_run_on_other_targets_or_points_than_the_champion(mlflow_server, bundle, change, field):
    cfg = _cfg(mlflow_server, registered_model=f"m-{uuid.uuid4().hex[:6]}")
    promote(cfg, "unused", _cv_run(cfg, 5.0, bundle))
    with pytest.raises(ValueError, match=f"cannot be compared with .*{field}"):
        promote(cfg, "unused", _cv_run(cfg, 1.0, bundle, **change))


def test_missing_runs_models_and_aliases_name_what_exists(mlflow_server, bundle):
    cfg = _cfg(mlflow_server, registered_model=f"m-{uuid.uuid4().hex[:6]}")
    run_id = _cv_run(cfg, 5.0, bundle)
    with pytest.raises(NotFoundError, match=f"no MLflow run 'deadbeef' in {mlflow_server}; latest runs: .*{run_id}"):
        promote(cfg, "unused", "deadbeef")
    promote(cfg, "unused", run_id)
    with pytest.raises(NotFoundError, match=f"no registered model 'nope' in .*registered: .*{cfg.registered_model}"):
        load_champion(cfg.model_copy(update={"registered_model": "nope"}), "unused", ["soc_g_kg"])
    with pytest.raises(NotFoundError, match="has no alias 'gold'; aliases: champion"):
        load_champion(cfg.model_copy(update={"champion_alias": "gold"}), "unused", ["soc_g_kg"])
