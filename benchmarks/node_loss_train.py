"""Training through a lost node: the stall it causes and the samples it costs (the training half of node_loss.py).

A head and two worker nodes on this machine (`tests.fixtures.multinode.MultiNodeCluster`, 1 CPU
each), run storage on a moto S3 server, MLflow in a SQLite file. One fold of the tiny recipe is
fine-tuned on cached points by an elastic group (``train.num_workers: [1, 2]``, one worker per
node). In epoch 2 the node of rank 1 is killed as a preemption kills it (SIGKILL to all its
processes, its folders deleted); the group goes on alone from the last checkpoint on S3. Without
``--quick`` a node is added back at the start of epoch 4 and the group grows to 2 again.

- ``train_stall_s``: from the kill to the next completed optimiser step (any worker);
- ``samples_lost``: over every epoch, the training rows the epoch should have seen minus those its
  workers counted (the ``samples`` metric each epoch logs; a missing epoch loses all of its rows).

    python benchmarks/node_loss_train.py [--quick]

Wall times on a shared machine are under load; the last line is
``NODE_LOSS_TRAIN: train_stall_s=S samples_lost=N (target: samples_lost=0)``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from s3_server import start_s3

from soilnet.data.folds import FoldConfig, fold_split
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.finetune import run_cross_validation
from tests.conftest import TINY_RECIPE
from tests.fixtures.multinode import MultiNodeCluster
from tests.fixtures.node_loss import NodeChaos, StepLog, step_probe

log = logging.getLogger("node_loss_train")


def demo_region(root: Path) -> str:
    """The tests' tiny demo region (6 x 6 km, 200 points) generated under `root`."""
    from soilnet.data.demo_region import DemoConfig, generate_demo_region
    from soilnet.data.raster_cube import RasterLayout

    generate_demo_region(
        DemoConfig(width_km=6, height_km=6, n_points=200, seed=3), str(root), RasterLayout(inner_chunk=32, shard=128)
    )
    return str(root)


def history(tracking: TrackingConfig, run_id: str, key: str) -> dict[int, float]:
    """The value MLflow shows for each epoch (the last logged)."""
    from mlflow import MlflowClient

    values = MlflowClient(tracking_uri=tracking.uri).get_metric_history(run_id, key)
    return {m.step: m.value for m in sorted(values, key=lambda m: (m.step, m.timestamp))}


def measure_training(quick: bool) -> dict[str, float | int]:
    """Fine-tune through a lost node on a fresh cluster; returns ``train_stall_s`` and ``samples_lost``."""
    epochs = 3 if quick else 5
    s3 = start_s3()
    work = Path(tempfile.mkdtemp(prefix="nlt", dir="/tmp"))
    cluster = MultiNodeCluster(work / "c")
    try:
        root = demo_region(work / "demo")
        recipe = work / "tiny.yaml"
        recipe.write_text(TINY_RECIPE)
        cluster.start().connect()
        stream = StreamConfig(batch_size=16, read_batch_size=32, buffer_px=2, n_unlabelled=64, reader_concurrency=1)
        folds = FoldConfig(k=3)
        cfg = FinetuneConfig(
            recipe=str(recipe), epochs=epochs, patience=epochs, folds=folds, only_folds=[0], stream=stream
        )
        train = TrainConfig(
            num_workers=[1, 2], cpus_per_worker=1, threads_per_worker=1, resize_check_s=1, max_failures=3
        )
        tracking = TrackingConfig(uri=f"sqlite:///{work / 'mlruns.db'}", experiment="node-loss")
        steps = -(-_train_rows(root, folds) // (2 * stream.batch_size))
        grow = None if quick else 3 * steps + 1
        probe = step_probe(work, steps + steps // 2 + 1, 1, grow, "s3://bench/runs/finetune", steps)
        data = DataConfig(root=root, runs="s3://bench/runs")
        started = time.monotonic()
        chaos = NodeChaos(cluster, work)
        cv = chaos.run(lambda: run_cross_validation(data, train, cfg, tracking, on_step=probe))
        log.info("run took %.0f s (under load)", time.monotonic() - started)
        n_train = _train_rows(root, folds)
        samples = history(tracking, cv.fold_runs[0], "samples")
        workers = history(tracking, cv.fold_runs[0], "workers")
        log.info("samples per epoch %s of %d; workers per epoch %s", samples, n_train, workers)
        if chaos.killed_at is None:
            raise RuntimeError("the node was never killed: the run ended before the kill step")
        lost = sum(n_train - int(samples.get(epoch, 0)) for epoch in range(1, epochs + 1))
        return {"train_stall_s": StepLog(work).stall_s(chaos.killed_at), "samples_lost": lost}
    finally:
        cluster.shutdown()
        s3.stop()


def _train_rows(root: str, folds: FoldConfig) -> int:
    """The training rows of fold 0 (what every epoch must see once)."""
    from soilnet.training.job import labelled_table

    table = labelled_table(DataConfig(root=root), "soc_g_kg", folds, 0.5)
    split = fold_split(table["fold"].to_numpy(), 0, table["x"], table["y"], folds.val_fraction, folds.seed)
    return len(split.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 epochs, the node not replaced (6 min on this machine under load 60)."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    figures = measure_training(args.quick)
    print(
        f"NODE_LOSS_TRAIN: train_stall_s={figures['train_stall_s']:.1f} samples_lost={figures['samples_lost']} "
        "(target: samples_lost=0)"
    )


if __name__ == "__main__":
    main()
