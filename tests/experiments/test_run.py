"""`soilnet experiment` end to end on the tiny demo region (runs on S3): shared points and folds, nested runs,
reruns skip finished arms."""

from __future__ import annotations

import pandas as pd
import pytest

import soilnet.experiments.run as run_module
from soilnet import storage
from soilnet.config import load_config, with_overrides
from soilnet.evaluation.design import DesignConfig
from soilnet.experiments.run import check_shared, run_experiment

DESIGN = {
    "name": "tiny-table",
    "arms": [
        {"name": "deep", "recipe": "soilnet"},
        {"name": "rf", "baseline": {"model": "random_forest", "inputs": "centre"}},
        {"name": "fair_rf", "baseline": {"model": "random_forest", "inputs": "context"}},
        {"name": "fair_linear", "baseline": {"model": "linear", "inputs": "context", "climate": "none"}},
    ],
}


@pytest.fixture
def experiment_cfg(tiny_demo, tiny_recipe, tmp_path, s3_bucket):
    """The tiny demo's cubes and points on disk; the experiment's folder and its training runs on S3 (moto)."""
    return load_config(
        None,
        [
            f"data.root={tiny_demo.root}",
            f"data.write_roots=[{s3_bucket}]",
            f"data.runs={s3_bucket}/runs",
            f"tracking.uri=sqlite:///{tmp_path / 'mlruns.db'}",
            "train.num_workers=1",
            "finetune.epochs=1",
            "finetune.steps_per_epoch=1",
            "finetune.folds.k=2",
            "finetune.stream={batch_size: 16, read_batch_size: 64, buffer_px: 2, n_unlabelled: 64}",
            "evaluate.baselines.random_forest.n_estimators=10",
            f"experiment.recipes={{soilnet: {tiny_recipe}}}",
            "experiment.context_windows=[3, 7, 15]",
            "experiment.seeds=1",
        ],
    )


@pytest.mark.slow
def test_arms_share_points_and_folds_nest_their_runs_and_a_rerun_skips_them(ray_local, experiment_cfg, monkeypatch):
    from mlflow import MlflowClient

    design = DesignConfig.model_validate(DESIGN)
    first = run_experiment(experiment_cfg, design)
    assert first.ran == ["deep/seed0", "rf/seed0", "fair_rf/seed0", "fair_linear/seed0"] and not first.skipped

    # every arm scored every point with the same fold id
    root = run_module.experiment_root(experiment_cfg, design)
    store = run_module.ExperimentStore(root)
    frames = [store.load(arm["name"], 0).predictions[["id", "fold"]] for arm in DESIGN["arms"]]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])
    assert frames[0]["fold"].nunique() == 2 and len(frames[0]) == 200
    assert list(first.summary.query("metric == 'rmse'")["model"]) == [a["name"] for a in DESIGN["arms"]]
    assert first.headline.startswith("EXPERIMENT: best=") and "fair_rf_rmse=" in first.headline
    assert "mean+std over 3/7/15 px" in first.table and "16 px window" in first.table

    # one parent run; each arm's run nested under it, and its fold runs under the arm's run
    client = MlflowClient(tracking_uri=experiment_cfg.tracking.uri)
    children = client.search_runs(
        [client.get_run(first.run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{first.run_id}'"
    )
    by_arm = {run.data.tags["soilnet.arm"]: run for run in children}
    assert set(by_arm) == {"deep", "rf", "fair_rf", "fair_linear"}
    for run in by_arm.values():
        folds = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        assert len(folds) == 2

    # a rerun trains nothing and gives the same table
    def refuse(*args, **kwargs):
        raise AssertionError("a finished arm was trained again")

    monkeypatch.setattr(run_module, "run_cross_validation", refuse)
    second = run_experiment(experiment_cfg, design)
    assert second.ran == [] and len(second.skipped) == 4
    assert second.table == first.table and second.run_id == first.run_id
    # changed settings are not "finished": more trees rerun the forests, and only them; an arm-seed without
    # its done marker (killed mid-way) runs again
    storage.remove(storage.join(store.arm_folder("fair_linear", 0), "done.json"))
    third = run_experiment(with_overrides(experiment_cfg, ["evaluate.baselines.random_forest.n_estimators=11"]), design)
    assert third.ran == ["rf/seed0", "fair_rf/seed0", "fair_linear/seed0"]
    assert third.run_id == first.run_id and "fair_linear" in third.table


def test_an_arm_on_other_points_or_folds_is_refused():
    table = pd.DataFrame({"id": ["a", "b", "c"], "fold": [0, 1, 1]})
    exp = run_module.Experiment(cfg=None, design=None, store=None, table=table, parent=None)
    check_shared(exp, "ok", table.copy())
    with pytest.raises(ValueError, match="arm 'moved' was scored on other points or folds"):
        check_shared(exp, "moved", table.assign(fold=[0, 0, 1]))
    with pytest.raises(ValueError, match="arm 'fewer'"):
        check_shared(exp, "fewer", table.iloc[:2])


def test_arm_names_become_valid_mlflow_metric_keys():
    assert run_module.metric_name("resnet+glam+lstm") == "resnet_glam_lstm"
    assert run_module.metric_name("ssl-patch32") == "ssl-patch32"
