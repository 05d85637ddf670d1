"""Elastic training: each worker's share of the global batch when the group runs on fewer workers than its maximum.

A run with ``train.num_workers: [min, max]`` keeps the batch and learning-rate schedule of ``max``
workers whatever the size of its group: every optimiser step consumes ``max x batch_size x
grad_accum_steps`` samples, every epoch the same number of optimiser steps. A group of ``w``
workers makes up the difference in one of two ways:

- ``max`` a multiple of ``w``: each worker keeps its micro-batch and accumulates ``max / w`` times
  as many of them per optimiser step (and takes ``max / w`` times as many per epoch);
- else, ``max x batch_size`` a multiple of ``w``: each worker's micro-batch grows to
  ``max x batch_size / w`` (same accumulation, same steps per epoch).

Any other size is refused before the run starts (`check_worker_range`). The epoch tables are padded
for ``max`` workers, so both ways cut every epoch into whole, equal worker slices: each sample once
per epoch, whatever the worker count.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerShare:
    """What one of ``world`` workers takes: its micro-batch, micro-batches per optimiser step and per epoch."""

    world: int
    batch_size: int
    accum_steps: int
    steps_per_epoch: int


def worker_share(world: int, max_workers: int, batch_size: int, accum_steps: int, steps_per_epoch: int) -> WorkerShare:
    """The share of each of `world` workers of a run set for `max_workers` (see the module docstring)."""
    if not 1 <= world <= max_workers:
        raise ValueError(f"a worker group of {world} is outside 1..{max_workers} (train.num_workers)")
    if max_workers % world == 0:
        factor = max_workers // world
        return WorkerShare(world, batch_size, accum_steps * factor, steps_per_epoch * factor)
    if max_workers * batch_size % world == 0:
        return WorkerShare(world, max_workers * batch_size // world, accum_steps, steps_per_epoch)
    raise ValueError(
        f"{world} workers cannot share the global batch of {max_workers} workers x batch_size {batch_size} evenly: "
        f"choose a train.num_workers range whose sizes divide {max_workers} or {max_workers * batch_size}"
    )


def check_worker_range(min_workers: int, max_workers: int, batch_size: int) -> None:
    """Fail before the run starts if a group size in ``[min, max]`` cannot keep the global batch."""
    for world in range(min_workers, max_workers + 1):
        worker_share(world, max_workers, batch_size, 1, 1)
