"""Where a Ray Train worker takes its batches: a Ray dataset shard, or its slice of a sample cache.

`StreamBatches` iterates the worker's shard of a named Ray dataset (the streaming pipeline), one
continuous stream over every epoch (the stream pads each epoch so all shards are even).
`CacheBatches` cuts the worker's own slice of each epoch's rows out of a sample cache held in the
object store (raw int16, read once by `CachedSource`) and normalises it in a background thread:
cached folds start inside the worker, with no reader actors to launch per model. Both yield dicts
of tensors (``image``, ``climate``, ``target``, ``valid``, ...), ``steps`` batches of ``batch_size`` rows
per epoch: the worker's share (`soilnet.training.elastic`), larger than the configured batch when an
elastic group runs on fewer workers than its maximum.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from soilnet.data.normalisation import NormStats, normalise_batch
from soilnet.data.stream import torch_collate
from soilnet.training.device_cache import CacheDevice, DeviceCache

Batch = dict[str, Any]


class Batches(Protocol):
    """What a Ray Train worker iterates: ``steps`` batches of each epoch, the same count on every worker."""

    def epoch(self, epoch: int, steps: int, batch_size: int) -> Iterator[Batch]:
        """The worker's `steps` batches of `batch_size` rows of `epoch`."""
        ...


class StreamBatches:
    """The worker's shard of the Ray dataset `name` passed to the trainer, as one stream over every epoch."""

    def __init__(self, name: str, prefetch: int = 2) -> None:
        self.name, self.prefetch = name, prefetch
        self._batches: Iterator[Batch] | None = None

    def epoch(self, epoch: int, steps: int, batch_size: int) -> Iterator[Batch]:
        """The next `steps` batches of the stream (the epoch number is the stream's own order).

        A worker group started anew (after a failure, or resized) reads the stream from its start.
        """
        if self._batches is None:
            import ray.train

            shard = ray.train.get_dataset_shard(self.name)
            self._batches = iter(
                shard.iter_torch_batches(
                    batch_size=batch_size, collate_fn=torch_collate, prefetch_batches=self.prefetch
                )
            )
        for _ in range(steps):
            yield next(self._batches)


def cache_rows(cache: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Decoded samples of cache rows (image float32 with NaN for nodata)."""
    from soilnet.data.raster_cube import decode

    image = decode(cache["image"][rows].swapaxes(0, 1), cache["scale"], cache["offset"], cache["nodata"])
    return {
        "image": image.swapaxes(0, 1),
        "climate": cache["climate"][rows],
        "target": cache["target"][rows],
        "x": cache["x"][rows],
        "y": cache["y"][rows],
        "id": cache["id"][rows],
    }


class CacheBatches:
    """Each epoch's rows of an epoch table, cut from a cached sample set and normalised in the worker.

    ``rows`` holds, per row of the epoch table (`soilnet.data.stream.epoch_table`), the cache
    row, its epoch and its ``valid`` weight; each epoch's length is a multiple of
    ``world_size x batch_size`` (the largest group). The epoch is a sequence of batches of the
    worker's batch size, dealt out in turn: worker ``r`` of ``w`` takes batches ``r, r + w, r + 2w,
    ...`` (`worker_batches`), so an optimiser step trains on the same rows whatever the group size.
    With ``device="cuda"`` (``train.cache_device``) the cache moves to the worker's GPU once and
    batches are cut and normalised there (`soilnet.training.device_cache`).
    """

    def __init__(
        self,
        cache: Any,
        rows: pd.DataFrame,
        stats: NormStats,
        mask_channel: bool,
        prefetch: int = 2,
        device: CacheDevice = "cpu",
    ) -> None:
        self.cache, self.stats, self.mask_channel = cache, stats, mask_channel
        self.prefetch, self.device = prefetch, device
        self.on_device: DeviceCache | None = None
        self.rows = {int(e): part[["row", "valid"]].to_numpy() for e, part in rows.groupby("epoch", sort=True)}

    def epoch(self, epoch: int, steps: int, batch_size: int) -> Iterator[Batch]:
        """`steps` normalised batches of this worker's slice of `epoch` (cycled if the slice is shorter)."""
        import ray
        import ray.train

        context = ray.train.get_context()
        rank, world = context.get_world_rank(), context.get_world_size()
        parts = self.parts(epoch, steps, batch_size, rank, world)
        if isinstance(self.cache, ray.ObjectRef):
            self.cache = ray.get(self.cache)
        if self.device != "cpu":
            if self.on_device is None:
                self.on_device = DeviceCache(self.cache, self.stats, self.mask_channel, self.device)
            cache = self.on_device
            return (cache.batch(part[:, 0].astype(np.int64), part[:, 1]) for part in parts)
        return prefetched((self._batch(part) for part in parts), self.prefetch)

    def parts(self, epoch: int, steps: int, batch_size: int, rank: int, world: int) -> list[np.ndarray]:
        """The (cache row, valid) pairs of each of the `steps` batches of worker `rank` of `world` in `epoch`."""
        if epoch not in self.rows:
            raise ValueError(f"epoch {epoch} is not in the epoch table of these batches (epochs {sorted(self.rows)})")
        return worker_batches(self.rows[epoch], rank, world, steps, batch_size)

    def _batch(self, part: np.ndarray) -> Batch:
        sample = cache_rows(self.cache, part[:, 0].astype(np.int64))
        sample["valid"] = part[:, 1].astype(np.float32)
        batch = normalise_batch(sample, self.stats, self.mask_channel)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items() if v.dtype.kind not in "OUS"}


def worker_batches(table: np.ndarray, rank: int, world: int, steps: int, batch_size: int) -> list[np.ndarray]:
    """Worker `rank`'s `steps` batches of an epoch's rows: batches ``rank, rank + world, ...`` of the epoch's
    sequence of `batch_size` rows (from its start again if `steps` asks for more)."""
    if len(table) % (world * batch_size):
        raise ValueError(
            f"an epoch of {len(table)} rows does not split into batches of {batch_size} for {world} workers"
        )
    starts = (((i * world + rank) * batch_size) % len(table) for i in range(steps))
    return [table[start : start + batch_size] for start in starts]


def prefetched(batches: Iterator[Batch], depth: int) -> Iterator[Batch]:
    """Iterate `batches`, produced up to `depth` ahead in a background thread (numpy releases the GIL)."""
    if depth < 1:
        yield from batches
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for batch in batches:
                slots.put(batch)
            slots.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            slots.put(error)

    threading.Thread(target=produce, daemon=True).start()
    while (item := slots.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
