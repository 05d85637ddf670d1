"""Ray Train workers really killed: an ``on_step`` callback that SIGKILLs a worker process, and a tiny run to kill.

Loaded by path (the tests are no package) by ``tests/training/test_resume.py`` and
``tests/reliability/test_worker_kills.py``. The callback is a closure, so cloudpickle ships it to the Ray
workers by value: nothing here needs to be importable there.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import PretrainConfig

#: Seconds a doomed worker waits before dying: the controller registers the checkpoints reported before,
#: and the other rank gets ahead (finishes, and logs, an epoch that ended at the killed step).
KILL_DELAY_S = 5.0
MARKER = "killed-at-step-"


def killer(folder: str | os.PathLike[str], *steps: int, rank: int = 1) -> Callable[[int, int], None]:
    """An ``on_step`` callback that SIGKILLs the `rank` worker after each of the optimiser `steps`, once each.

    A marker file per step in `folder` remembers the kill, so the same step run again after the restart
    goes on; `kills` reads them back.
    """
    folder = str(folder)

    def on_step(worker_rank: int, step: int) -> None:
        marker = Path(folder) / f"{MARKER}{step}"
        if worker_rank == rank and step in steps and not marker.exists():
            marker.touch()
            time.sleep(KILL_DELAY_S)
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step


def kills(folder: str | os.PathLike[str]) -> list[int]:
    """The steps at which a `killer` of `folder` killed a worker, in order."""
    return sorted(int(p.name.removeprefix(MARKER)) for p in Path(folder).glob(f"{MARKER}*"))


def tiny_pretrain(
    root: str, recipe: str, tmp_path: Path, experiment: str, epochs: int = 3, steps_per_epoch: int = 2
) -> tuple[DataConfig, PretrainConfig, TrackingConfig]:
    """Data, pretraining and tracking sections of a tiny SSL run on the demo region at `root` (own MLflow DB)."""
    data = DataConfig(root=root, runs=str(tmp_path / "runs"))
    stream = StreamConfig(
        batch_size=8, read_batch_size=16, buffer_px=2, n_unlabelled=48, reader_concurrency=1, shuffle="shard"
    )
    cfg = PretrainConfig(recipe=recipe, epochs=epochs, steps_per_epoch=steps_per_epoch, stream=stream)
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}", experiment=experiment)
    return data, cfg, tracking
