"""Starting a Ray Train run: an earlier run's checkpoints in the run folder are never silently continued."""

from __future__ import annotations

import pytest

from soilnet.training.trainer import SNAPSHOT_FILE, refuse_earlier_run


def test_an_earlier_runs_checkpoints_are_refused_unless_resuming(tmp_path):
    refuse_earlier_run(str(tmp_path), "finetune", None)  # a fresh folder is fine
    (tmp_path / "finetune").mkdir()
    (tmp_path / "finetune" / SNAPSHOT_FILE).write_text("{}")
    with pytest.raises(
        FileExistsError, match=r"finetune already holds the checkpoints of an earlier run.*--resume-from"
    ):
        refuse_earlier_run(str(tmp_path), "finetune", None)
    refuse_earlier_run(str(tmp_path), "finetune", str(tmp_path / "finetune" / "checkpoint_x"))
    refuse_earlier_run(str(tmp_path), "other-name", None)


def test_jobs_refuse_an_earlier_run_before_reading_any_sample(tmp_path):
    from soilnet.data.workspace import DataConfig
    from soilnet.tracking.config import TrackingConfig
    from soilnet.training.config import FinetuneConfig, PretrainConfig, TrainConfig
    from soilnet.training.finetune import run_cross_validation
    from soilnet.training.pretrain import run_pretrain

    data = DataConfig(root=str(tmp_path / "no-cubes-here"), runs=str(tmp_path / "runs"))
    for name in ("pretrain", "finetune"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / SNAPSHOT_FILE).write_text("{}")
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    # the workspace has no cubes: reaching them would be a different error
    with pytest.raises(FileExistsError, match=r"runs/pretrain already holds"):
        run_pretrain(data, TrainConfig(), PretrainConfig(), tracking)
    with pytest.raises(FileExistsError, match=r"runs/finetune already holds"):
        run_cross_validation(data, TrainConfig(), FinetuneConfig(), tracking)


def test_local_checkpoints_are_refused_on_a_cluster_of_several_nodes(monkeypatch, tmp_path):
    import ray

    from soilnet.training.trainer import check_shared_storage

    nodes = [{"Alive": True}, {"Alive": False}]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    check_shared_storage(str(tmp_path))  # one live node: its disk is the cluster's
    nodes.append({"Alive": True})
    with pytest.raises(ValueError, match=r"is a local path, but the Ray cluster has 2 nodes: a node that is lost"):
        check_shared_storage(str(tmp_path))
    check_shared_storage("s3://bucket/runs")  # an object store outlives any node
