"""Where training samples come from: streamed from the cubes every epoch, or read once and cached.

Both sources read a location table (`soilnet.data.locations` columns) and offer

- ``read(table)``: decoded samples of the rows, in the driver (normalisation fitting, test
  predictions, baseline features);
- ``batches(table, epochs, world_size, stats, name)``: the worker-side normalised batches
  for Ray Train (`soilnet.training.batches`) and the Ray datasets it needs, every epoch ordered and
  padded by `soilnet.data.stream.epoch_table`, so each worker gets the same number of full
  batches (padding rows have ``valid = 0``).

`CubeSource` re-reads windows from the cubes each epoch through a Ray dataset (the streaming
pipeline, for large tables). `CachedSource` reads each location once into the object store as
raw int16 and the workers cut every epoch from it (labelled points, SSL on a laptop), so K folds
x E epochs cost one read and no reader actors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from soilnet.data.climate_cube import ClimateCube, open_climate_cube
from soilnet.data.locations import label_columns, location_columns
from soilnet.data.normalisation import NormStats
from soilnet.data.raster_cube import RasterCube, open_raster_cube
from soilnet.data.stream import SampleReader, build_dataset, epoch_table
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.training.batches import CacheBatches, StreamBatches, cache_rows
from soilnet.training.device_cache import CacheDevice

log = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class CubeInputs:
    """The raster and climate cubes of a job, opened once (metadata only) and handed to every reader."""

    raster: RasterCube
    climate: ClimateCube

    @classmethod
    def open(cls, data: DataConfig) -> CubeInputs:
        """Open the configured raster and climate cubes."""
        return cls(open_raster_cube(data.url("raster")), open_climate_cube(data.url("climate")))

    @property
    def bands(self) -> list[str]:
        """The raster cube's band names, in cube order."""
        return list(self.raster.band_names)

    @property
    def variables(self) -> list[str]:
        """The climate cube's variables, in cube order."""
        return list(self.climate.variables)


def _columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: table[c].to_numpy() for c in ("id", "x", "y", "date", *label_columns(table))}


class CubeSource:
    """Samples read from the raster and climate cubes every time (the streaming pipeline)."""

    def __init__(self, cubes: CubeInputs, cfg: StreamConfig) -> None:
        self.cubes, self.cfg = cubes, cfg
        self._reader: SampleReader | None = None

    @property
    def reader(self) -> SampleReader:
        """The in-process reader of decoded samples (opened on first use)."""
        if self._reader is None:
            self._reader = SampleReader(
                self.cubes.raster,
                self.cubes.climate,
                self.cfg.patch_px,
                self.cfg.months,
                output="decoded",
                threads=self.cfg.read_threads,
                climate_cache_chunks=self.cfg.climate_cache_chunks,
            )
        return self._reader

    def read(self, table: pd.DataFrame | Batch) -> Batch:
        """Decoded samples of every row of `table` (a location table or its columns), in order."""
        table = pd.DataFrame(table)
        step = self.cfg.read_batch_size
        parts = [self.reader(_columns(table.iloc[i : i + step])) for i in range(0, len(table), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def dataset(self, table: pd.DataFrame, epochs: Sequence[int], world_size: int, stats: NormStats) -> Any:
        """Normalised batches of `table` for `epochs`, padded for `world_size` workers."""
        cubes = self.cubes
        return build_dataset(
            table, cubes.raster, cubes.climate, self.cfg, epochs, world_size, output="normalised", stats=stats
        )

    def batches(
        self, table: pd.DataFrame, epochs: Sequence[int], world_size: int, stats: NormStats, name: str
    ) -> tuple[StreamBatches, dict[str, Any]]:
        """The worker-side batches of `table`'s normalised batches for `epochs`: the shard of Ray dataset `name`."""
        return StreamBatches(name), {name: self.dataset(table, epochs, world_size, stats)}


class CachedSource:
    """Samples of a fixed location table read once (raw int16) and kept in the Ray object store.

    ``device`` (``train.cache_device``) is where each worker keeps its copy: host memory or its GPU.
    """

    def __init__(self, cubes: CubeInputs, cfg: StreamConfig, table: pd.DataFrame, device: CacheDevice = "cpu") -> None:
        import ray

        self.cfg, self.device = cfg, device
        raster = cubes.raster
        reader = SampleReader(
            raster,
            cubes.climate,
            cfg.patch_px,
            cfg.months,
            output="raw",
            threads=cfg.read_threads,
            climate_cache_chunks=cfg.climate_cache_chunks,
        )
        step = cfg.read_batch_size
        parts = [reader(_columns(table.iloc[i : i + step])) for i in range(0, len(table), step)]
        self.cache = {k: np.concatenate([p[k] for p in parts]) for k in ("image", "climate", "target", "x", "y", "id")}
        self.cache.update(scale=raster.scale, offset=raster.offset, nodata=raster.nodata)
        self.index = pd.Index(self.cache["id"])
        if not self.index.is_unique:
            raise ValueError(f"location ids are not unique: {self.index[self.index.duplicated()][:3].tolist()}")
        self.ref = ray.put(self.cache)
        log.info("cached %d samples (%.0f MB raw)", len(table), self.cache["image"].nbytes / 2**20)

    def _rows(self, table: pd.DataFrame | Batch) -> np.ndarray:
        ids = np.asarray(table["id"]).astype(str)
        rows = self.index.get_indexer(ids)
        if (rows < 0).any():
            raise ValueError(f"location {ids[int(np.argmin(rows))]!r} is not in the sample cache")
        return rows

    def read(self, table: pd.DataFrame | Batch) -> Batch:
        """Decoded samples of every row of `table` (a location table or its columns), in order."""
        return cache_rows(self.cache, self._rows(table))

    def batches(
        self, table: pd.DataFrame, epochs: Sequence[int], world_size: int, stats: NormStats, name: str
    ) -> tuple[CacheBatches, dict[str, Any]]:
        """The worker-side batches of `table`'s normalised batches for `epochs` (no Ray dataset: cut in the workers)."""
        self._rows(table)
        # Cached rows cost nothing to gather: a shard-grouped order buys nothing, shuffle globally.
        order = self.cfg.model_copy(update={"shuffle": "global"}) if self.cfg.shuffle == "shard" else self.cfg
        frame = epoch_table(table[location_columns(table)], order, epochs, world_size, None)
        rows = pd.DataFrame({"row": self._rows(frame), "epoch": frame["epoch"], "valid": frame["valid"]})
        return CacheBatches(self.ref, rows, stats, self.cfg.mask_channel, device=self.device), {}


#: Where a job's training samples come from.
SampleSource = CubeSource | CachedSource
