"""Batches of spectra for a Ray Train worker: two scan repeats of each sample as positive views.

The arrays (scan repeats per sample, and per-sample extras such as the paired MIR spectrum) sit in
the object store; each worker cuts its own slice of a per-epoch permutation seeded by
``(seed, epoch)``, so a resumed epoch draws the batches it would have drawn. Each batch holds
``spectrum`` (one repeat), ``positive`` (another repeat, the same one when a sample has only one),
the extras and ``valid`` (1: every row is a real sample; slices are cycled to fill the steps).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from soilnet.data.normalisation import NormStats

Batch = dict[str, torch.Tensor]


def no_stats(n_rows: int) -> NormStats:
    """The normalisation record of a spectral model: spectra come preprocessed, no target is standardised."""
    return NormStats(
        image_method="standard",
        bands=[],
        image_center=[],
        image_scale=[],
        variables=[],
        climate_mean=[],
        climate_std=[],
        target_mean=0.0,
        target_std=1.0,
        n_rows=max(n_rows, 1),
    )


class SpectraBatches:
    """Each worker's batches of spectra with a positive view per sample (see the module docstring)."""

    def __init__(self, arrays: Any, batch_size: int, seed: int) -> None:
        self.arrays, self.batch_size, self.seed = arrays, batch_size, seed

    def _resolved(self) -> dict[str, np.ndarray]:
        import ray

        if isinstance(self.arrays, ray.ObjectRef):
            self.arrays = ray.get(self.arrays)
        return self.arrays

    def epoch(self, epoch: int, steps: int, batch_size: int) -> Iterator[Batch]:
        """`steps` batches of `batch_size` of this worker's slice of the epoch's permutation."""
        import ray.train

        context = ray.train.get_context()
        yield from self.batches(epoch, steps, context.get_world_rank(), context.get_world_size(), batch_size)

    def batches(self, epoch: int, steps: int, rank: int, world: int, batch_size: int | None = None) -> Iterator[Batch]:
        """The batches of worker `rank` of `world` (no Ray needed); `batch_size` default: the configured one."""
        size = batch_size or self.batch_size
        arrays = self._resolved()
        views, counts = arrays["views"], arrays["counts"]
        rng = np.random.default_rng([self.seed, epoch, rank])
        order = np.random.default_rng([self.seed, epoch]).permutation(len(counts))
        mine = order[rank::world]
        for step in range(steps):
            start = (step * size) % len(mine)
            rows = np.take(mine, np.arange(start, start + size), mode="wrap")
            first = rng.integers(0, counts[rows])
            second = (first + rng.integers(1, np.maximum(counts[rows], 2))) % counts[rows]
            batch = {"spectrum": views[rows, first], "positive": views[rows, second]}
            batch.update({k: v[rows] for k, v in arrays.items() if k not in ("views", "counts")})
            batch["valid"] = np.ones(len(rows), dtype=np.float32)
            yield {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in batch.items()}
