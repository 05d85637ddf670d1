"""Epoch orders are reproducible, differ between epochs, group shards, and pad to equal shares."""

from __future__ import annotations

import numpy as np
import pytest

from soilnet.data.grid import Grid
from soilnet.data.sampling import epoch_order, pad_order, shard_ids, steps_per_epoch


def test_global_order_is_a_reproducible_permutation_per_epoch():
    a, b, c = epoch_order(50, "global", 7, 0), epoch_order(50, "global", 7, 0), epoch_order(50, "global", 7, 1)
    np.testing.assert_array_equal(a, b)
    assert sorted(a.tolist()) == list(range(50)) and not np.array_equal(a, c)
    np.testing.assert_array_equal(epoch_order(5, "none", 7, 3), np.arange(5))


def test_shard_order_keeps_each_shard_contiguous():
    grid = Grid.from_origin(3035, 0.0, 1000.0, 10.0, 100, 100)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1000, 200), rng.uniform(0, 1000, 200)
    shards = shard_ids(grid, 32, x, y)
    order = epoch_order(200, "shard", 1, 0, shards)
    assert sorted(order.tolist()) == list(range(200))
    runs = shards[order]
    changes = np.count_nonzero(np.diff(runs))
    assert changes == len(np.unique(shards)) - 1  # one run per shard
    assert not np.array_equal(order, epoch_order(200, "shard", 1, 1, shards))
    with pytest.raises(ValueError, match="one shard id per location"):
        epoch_order(200, "shard", 1, 0, None)


def test_shard_ids_mark_outside_points():
    grid = Grid.from_origin(3035, 0.0, 1000.0, 10.0, 100, 100)
    ids = shard_ids(grid, 32, np.array([5.0, 995.0, -5.0]), np.array([995.0, 5.0, 500.0]))
    assert ids.tolist() == [0, 15, -1]


def test_pad_order_gives_equal_full_batches():
    order = np.arange(37)
    padded, valid = pad_order(order, 2 * 4)
    assert len(padded) == 40 and valid.sum() == 37 and (valid[37:] == 0).all()
    np.testing.assert_array_equal(padded[:37], order)
    assert steps_per_epoch(37, 2, 4) * 2 * 4 == 40
    with pytest.raises(ValueError, match="multiple must be >= 1"):
        pad_order(order, 0)
