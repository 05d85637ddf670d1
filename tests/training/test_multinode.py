"""Ray Train across the nodes of a three-node cluster on this machine (#24): placement, node loss, elastic groups.

Run storage is the loopback S3 endpoint (a lost node's disk is gone); MLflow is a SQLite file every
node of this machine reaches. Nodes are killed as a preemption kills them (`tests.fixtures.multinode`),
at a step the workers choose (`tests.fixtures.node_loss`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from soilnet import storage
from soilnet.data.folds import FoldConfig
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.recipes.bundle import load_bundle
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import FinetuneConfig, PretrainConfig, TrainConfig
from soilnet.training.finetune import run_cross_validation
from soilnet.training.pretrain import run_pretrain
from tests.fixtures.node_loss import NodeChaos, StepLog, step_probe

pytestmark = [pytest.mark.multinode, pytest.mark.slow]

EPOCHS = 3
#: One CPU per worker: a worker node (1 CPU) holds one worker, so two workers sit on two nodes.
SPREAD = {"cpus_per_worker": 1.0, "threads_per_worker": 1}
#: Half a CPU per worker: both workers fit on one node.
PACKED = {"cpus_per_worker": 0.5, "threads_per_worker": 1}


def finetune(root: str, runs: str, tmp: Path, recipe: str, train: TrainConfig, on_step=None):
    """A one-fold cross-validation of the tiny recipe (cached points), checkpoints under `runs`, MLflow in `tmp`."""
    tmp.mkdir(exist_ok=True)
    data = DataConfig(root=root, runs=runs)
    stream = StreamConfig(batch_size=16, read_batch_size=32, buffer_px=2, n_unlabelled=64, reader_concurrency=1)
    cfg = FinetuneConfig(
        recipe=recipe, epochs=EPOCHS, patience=EPOCHS, folds=FoldConfig(k=3), only_folds=[0], stream=stream
    )
    tracking = TrackingConfig(uri=f"sqlite:///{tmp / 'mlruns.db'}", experiment="cv")
    return run_cross_validation(data, train, cfg, tracking, on_step=on_step), tracking


def history(tracking: TrackingConfig, run_id: str, key: str) -> dict[int, float]:
    """The value MLflow shows for each epoch (the last logged)."""
    from mlflow import MlflowClient

    values = MlflowClient(tracking_uri=tracking.uri).get_metric_history(run_id, key)
    return {m.step: m.value for m in sorted(values, key=lambda m: (m.step, m.timestamp))}


def weights(bundle_url: str) -> dict[str, torch.Tensor]:
    """The fold-0 model's weights of a bundle."""
    return load_bundle(bundle_url).models[0].state_dict()


def finished_runs(tracking: TrackingConfig) -> list[str]:
    """The statuses of every run of the tracking's experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking.uri)
    return [
        r.info.status for r in client.search_runs([client.get_experiment_by_name(tracking.experiment).experiment_id])
    ]


def test_finetune_across_nodes_repeats_one_node_and_an_elastic_group_survives_a_lost_node(
    multinode_cluster, s3_bucket, tiny_demo, tiny_recipe, tmp_path
):
    root, recipe = tiny_demo.root, tiny_recipe
    with pytest.raises(ValueError, match=r"is a local path, but the Ray cluster has 3 nodes: a node that is lost"):
        finetune(root, str(tmp_path / "runs"), tmp_path / "local", recipe, TrainConfig(num_workers=2, **SPREAD))

    # Two workers on two nodes train the model two workers on one node train, to the bit.
    two, tracking = finetune(
        root,
        f"{s3_bucket}/two",
        tmp_path / "two",
        recipe,
        TrainConfig(num_workers=2, **SPREAD),
        step_probe(tmp_path / "two"),
    )
    one, _ = finetune(
        root,
        f"{s3_bucket}/one",
        tmp_path / "one",
        recipe,
        TrainConfig(num_workers=2, **PACKED),
        step_probe(tmp_path / "one"),
    )
    spread, packed = StepLog(tmp_path / "two").nodes(), StepLog(tmp_path / "one").nodes()
    assert len(spread[0]) == len(spread[1]) == 1 and spread[0] != spread[1], spread
    assert len(packed[0] | packed[1]) == 1, packed
    got, want = weights(two.bundle), weights(one.bundle)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    run = two.fold_runs[0]
    n_train, steps = history(tracking, run, "samples")[1], int(history(tracking, run, "step")[1])
    assert history(tracking, run, "samples") == {e: n_train for e in range(1, EPOCHS + 1)}

    # The loss tolerance of the elastic run, fixed before it runs: the spread of two unkilled seeds.
    other, other_tracking = finetune(
        root, f"{s3_bucket}/seed1", tmp_path / "seed1", recipe, TrainConfig(num_workers=2, seed=1, **SPREAD)
    )
    tolerance = {
        key: max(
            abs(a - b)
            for a, b in zip(
                history(tracking, run, key).values(),
                history(other_tracking, other.fold_runs[0], key).values(),
                strict=True,
            )
        )
        for key in ("train_loss", "val_loss")
    }
    assert all(t > 0 for t in tolerance.values()), tolerance

    # Elastic: the node of rank 1 is lost mid-epoch 2 (the group goes on alone), a node comes back at the
    # start of epoch 3 (the group grows again).
    folder = tmp_path / "elastic"
    folder.mkdir()
    runs = f"{s3_bucket}/elastic"
    probe = step_probe(folder, steps + steps // 2 + 1, 1, 2 * steps + 1, f"{runs}/finetune", steps)
    elastic = TrainConfig(num_workers=[1, 2], resize_check_s=1, max_failures=3, **SPREAD)
    chaos = NodeChaos(multinode_cluster, folder)
    cv, elastic_tracking = chaos.run(lambda: finetune(root, runs, folder, recipe, elastic, probe))
    assert chaos.killed_at is not None and chaos.added == ["node_c"]
    fold = cv.fold_runs[0]
    assert finished_runs(elastic_tracking) == ["FINISHED", "FINISHED"]  # the fold run and its parent
    assert history(elastic_tracking, fold, "workers") == {1: 2.0, 2: 1.0, 3: 2.0}
    assert history(elastic_tracking, fold, "samples") == {e: n_train for e in range(1, EPOCHS + 1)}
    assert history(elastic_tracking, fold, "step") == {e: float(e * steps) for e in range(1, EPOCHS + 1)}
    for key, tol in tolerance.items():
        got, want = history(elastic_tracking, fold, key), history(tracking, run, key)
        assert got.keys() == want.keys()
        assert all(abs(got[e] - want[e]) <= tol for e in want), (key, got, want, tol)
    log = StepLog(folder)
    new_node = multinode_cluster.node("node_c").node_id
    assert {s.world for s in log.steps if s.time > chaos.killed_at} == {1, 2}
    assert new_node in {s.node for s in log.steps if s.world == 2 and s.time > chaos.killed_at}


def test_streamed_pretraining_resumes_from_s3_on_the_node_left(
    multinode_cluster, s3_bucket, tiny_demo, tiny_recipe, tmp_path
):
    from mlflow import MlflowClient

    # 48 windows, batches of 8 on 2 workers: 3 steps per epoch; the node of rank 1 (and of rank 0: both
    # workers pack onto one node) is lost in epoch 2.
    data = DataConfig(root=tiny_demo.root, runs=f"{s3_bucket}/runs")
    stream = StreamConfig(
        batch_size=8, read_batch_size=16, buffer_px=2, n_unlabelled=48, reader_concurrency=1, shuffle="shard"
    )
    cfg = PretrainConfig(recipe=tiny_recipe, epochs=EPOCHS, stream=stream)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}", experiment="stream")
    # Both workers (a quarter CPU each) and the reader fit on the node that is left.
    train = TrainConfig(num_workers=2, data_source="stream", max_failures=2, cpus_per_worker=0.25, threads_per_worker=1)
    chaos = NodeChaos(multinode_cluster, tmp_path)
    probe = step_probe(tmp_path, kill_step=5, run_url=f"{s3_bucket}/runs/pretrain", steps_per_epoch=3)
    result = chaos.run(lambda: run_pretrain(data, train, cfg, tracking, on_step=probe))

    assert chaos.killed_at is not None
    assert finished_runs(tracking) == ["FINISHED"]
    assert history(tracking, result.run_id, "step") == {e: float(3 * e) for e in range(1, EPOCHS + 1)}
    # A worker's shard of the stream is dealt in reader blocks (16 rows), not cut at epoch ends: an epoch
    # of the 48-row table may take a block of its neighbour's rows.
    n = MlflowClient(tracking_uri=tracking.uri).get_run(result.run_id).data.params["n_unlabelled"]
    samples = history(tracking, result.run_id, "samples")
    assert samples.keys() == {1, 2, 3} and all(abs(v - int(n)) <= 16 for v in samples.values()), (samples, n)
    assert storage.exists(storage.join(result.encoders, "image_encoder.safetensors"))
    log = StepLog(tmp_path)
    before = {s.node for s in log.steps if s.time < chaos.killed_at}
    after = [s for s in log.steps if s.time > chaos.killed_at]
    assert len({s.node for s in after}) == 1 and before.isdisjoint(s.node for s in after)  # on the node left
    assert min(s.step for s in after) == 4  # resumed from the epoch-1 checkpoint (on S3), not from scratch
