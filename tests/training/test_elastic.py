"""Elastic training without a cluster: worker shares keep the global batch, every sample once per epoch at any size."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from soilnet.data.sampling import steps_per_epoch
from soilnet.data.stream import epoch_table
from soilnet.data.stream_config import StreamConfig
from soilnet.training.batches import CacheBatches
from soilnet.training.config import TrainConfig
from soilnet.training.elastic import check_worker_range, worker_share


def test_num_workers_takes_a_count_or_a_min_max_range():
    assert TrainConfig(num_workers=3).num_workers == 3
    elastic = TrainConfig.model_validate({"num_workers": [1, 4]})
    assert (elastic.num_workers, elastic.min_workers, elastic.max_workers) == ((1, 4), 1, 4)
    assert elastic.model_dump(mode="json")["num_workers"] == [1, 4]
    assert TrainConfig(num_workers=[2, 2]).num_workers == 2  # a range of one size is a fixed group
    for bad, message in (([2, 1], "1 <= min <= max"), ([0, 2], "1 <= min <= max"), ([1, 2, 3], "two integers")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(num_workers=bad)
    with pytest.raises(ValueError, match="at least 1 worker"):
        TrainConfig(num_workers=0)


def test_a_smaller_group_keeps_the_global_batch_and_the_optimiser_steps_per_epoch():
    # 4 workers x batch 8 x accumulation 2, 6 micro-batches per epoch: 3 optimiser steps of 64 samples
    for world in (1, 2, 4):
        share = worker_share(world, 4, 8, 2, 6)
        assert share.batch_size == 8  # the micro-batch stays, accumulation grows
        assert world * share.batch_size * share.accum_steps == 4 * 8 * 2
        assert share.steps_per_epoch // share.accum_steps == 3
    three = worker_share(3, 6, 4, 1, 5)  # 6 / 3: accumulation; 4 workers of 6: per-worker batch 6
    assert (three.batch_size, three.accum_steps, three.steps_per_epoch) == (4, 2, 10)
    four = worker_share(4, 6, 4, 1, 5)
    assert (four.batch_size, four.accum_steps, four.steps_per_epoch) == (6, 1, 5)
    with pytest.raises(ValueError, match="3 workers cannot share the global batch of 4 workers x batch_size 8"):
        check_worker_range(2, 4, 8)
    check_worker_range(2, 4, 6)  # 3 workers take batches of 8
    with pytest.raises(ValueError, match=r"outside 1\.\.2"):
        worker_share(3, 2, 8, 1, 1)


@pytest.mark.parametrize(("max_workers", "batch_size", "n"), [(2, 4, 37), (4, 3, 50), (3, 4, 23)])
def test_each_sample_is_seen_once_per_epoch_and_each_step_trains_the_same_rows_whatever_the_group_size(
    max_workers, batch_size, n
):
    locations = pd.DataFrame(
        {"id": [f"p{i}" for i in range(n)], "x": 0.0, "y": 0.0, "date": "2020-01-01", "target": 1.0, "fold": 0}
    )
    stream = StreamConfig(batch_size=batch_size, shuffle="global")
    frame = epoch_table(locations, stream, range(2), max_workers, None)
    row = pd.Index(locations["id"]).get_indexer(frame["id"])
    rows = pd.DataFrame({"row": row, "epoch": frame["epoch"], "valid": frame["valid"]})
    batches = CacheBatches(None, rows, stats=None, mask_channel=False)
    steps = steps_per_epoch(n, max_workers, batch_size)
    accum = 2
    sizes = 0
    for epoch in range(2):
        by_step = {}
        for world in range(max_workers, 0, -1):
            try:
                share = worker_share(world, max_workers, batch_size, accum, steps)
            except ValueError:
                continue  # a size check_worker_range refuses before the run
            sizes += 1
            seen, optimiser_steps = Counter(), {}
            for rank in range(world):
                parts = batches.parts(epoch, share.steps_per_epoch, share.batch_size, rank, world)
                assert len(parts) == share.steps_per_epoch
                assert all(len(part) == share.batch_size for part in parts)
                for micro, part in enumerate(parts):
                    seen.update(part[part[:, 1] > 0, 0].astype(int).tolist())
                    optimiser_steps.setdefault(micro // share.accum_steps, Counter()).update(part[:, 0].tolist())
            assert seen == Counter(range(n)), (world, epoch)
            assert optimiser_steps == by_step.setdefault("max", optimiser_steps), (world, epoch)
    assert sizes >= 2 * 2
