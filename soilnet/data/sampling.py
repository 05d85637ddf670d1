"""Epoch orders of a location table: reproducible shuffles, shard grouping, equal worker shares.

- ``global``: a uniform permutation seeded by ``(seed, epoch)``, for sparse labelled points
  (their reads are issued concurrently; grouping buys little).
- ``shard``: shards in a random order, locations in random order within each shard, so that
  consecutive locations (one reader batch) share shards and inner chunks and each chunk is fetched
  once for many windows (pretraining, where the sampler may choose).
- Padding: each epoch is padded with repeats of its own first rows (``valid = 0``) to a multiple
  of ``world_size * batch_size``, so every Ray Train worker gets the same number of full batches
  (uneven shares deadlock the gradient all-reduce) and no location is dropped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from soilnet.data.grid import Grid


def shard_ids(grid: Grid, shard: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-major index of the shard holding each location's pixel (-1 outside the grid)."""
    row, col = grid.rowcol(x, y)
    per_row = -(-grid.width // shard)
    ids = (row // shard) * per_row + col // shard
    return np.where(grid.contains(x, y), ids, -1)


def epoch_order(
    n: int, mode: Literal["none", "global", "shard"], seed: int, epoch: int, shards: np.ndarray | None = None
) -> np.ndarray:
    """Row order of one epoch; the same (seed, epoch) always gives the same order."""
    rng = np.random.default_rng([seed, epoch])
    if mode == "none":
        return np.arange(n, dtype=np.int64)
    if mode == "global":
        return rng.permutation(n).astype(np.int64)
    if shards is None or len(shards) != n:
        raise ValueError(
            f"shard order needs one shard id per location ({n}), got {None if shards is None else len(shards)}"
        )
    keys = np.unique(shards)
    rank = np.empty(keys.max() - keys.min() + 1, dtype=np.int64)
    rank[keys - keys.min()] = rng.permutation(len(keys))
    within = rng.permutation(n)
    return within[np.argsort(rank[shards[within] - keys.min()], kind="stable")].astype(np.int64)


def pad_order(order: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """The order padded to a multiple of ``multiple`` by repeating its head, and a 0/1 ``valid`` flag."""
    if multiple < 1:
        raise ValueError(f"padding multiple must be >= 1, got {multiple}")
    if len(order) == 0:
        return order, np.zeros(0, dtype=np.float32)
    pad = -len(order) % multiple
    padded = np.concatenate([order, np.resize(order, pad)])
    valid = np.concatenate([np.ones(len(order), np.float32), np.zeros(pad, np.float32)])
    return padded, valid


def steps_per_epoch(n_locations: int, world_size: int, batch_size: int) -> int:
    """Batches each worker takes per epoch once the epoch is padded by `pad_order`."""
    return -(-n_locations // (world_size * batch_size))
