"""The training-sample stream: location table -> Ray Data reader actors -> NumPy dict batches.

``build_dataset`` orders the locations of the requested epochs (`soilnet.data.sampling`), pads each
epoch so every training worker gets the same number of full batches, and maps `SampleReader`
over contiguous slices of ``read_batch_size`` locations with ``concurrency`` actors that each
open the cubes once. Batches hold plain arrays:

- ``image`` (B, C, P, P): raw int16, decoded float32 (NaN = nodata / outside the cube) or
  normalised float32 (`soilnet.data.normalisation`), by ``output``;
- ``climate`` (B, months, V) float32; ``target`` (B,) float32 (NaN when unlabelled), or (B, K) for a
  table of several outputs (`soilnet.data.locations.label_matrix`);
- ``x``, ``y`` (cube CRS), ``id`` (str), ``fold``, ``epoch`` and ``valid`` (0 for padding rows).

In a Ray Train worker, iterate ``ray.train.get_dataset_shard("train").iter_torch_batches(
batch_size=cfg.batch_size, collate_fn=torch_collate)`` once over all epochs and take
`soilnet.data.sampling.steps_per_epoch` batches per epoch; weight the loss by ``valid``.
Every worker then runs the same number of steps, so the all-reduce cannot deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from ray.data.collate_fn import NumpyBatchCollateFn

from soilnet.data.climate_cube import ClimateCube, open_climate_cube
from soilnet.data.climate_series import ClimateSeriesReader
from soilnet.data.locations import COLUMNS, WEIGHT, label_matrix, location_columns
from soilnet.data.normalisation import NormStats, normalise_batch
from soilnet.data.raster_cube import RasterCube, decode, open_raster_cube
from soilnet.data.sampling import epoch_order, pad_order, shard_ids
from soilnet.data.shard_reader import ShardWindowReader
from soilnet.data.stream_config import StreamConfig

log = logging.getLogger(__name__)

Output = Literal["raw", "decoded", "normalised"]
PASSTHROUGH = ("fold", "epoch", "valid")
#: Chunks of one shard up to this many bytes apart are fetched in one range (a request costs more than 1 MiB moved).
SPARSE_COALESCE_BYTES = 1 << 20
#: Upper bound on the blocks of the location table (each a whole number of reader batches).
MAX_BLOCKS = 256


class SampleReader:
    """Reads image windows and climate series of a batch of locations; opens the cubes once.

    Used as the Ray Data actor class (``map_batches(SampleReader, ...)``, given the cube URLs) and
    directly in-process (given the cubes a job has already opened, or their URLs).
    """

    def __init__(
        self,
        raster: RasterCube | str,
        climate: ClimateCube | str,
        patch_px: int = 64,
        months: int = 61,
        output: Output = "decoded",
        stats: dict[str, Any] | None = None,
        mask_channel: bool = False,
        threads: int = 16,
        climate_cache_chunks: int = 256,
    ) -> None:
        if output == "normalised" and stats is None:
            raise ValueError("output='normalised' needs normalisation statistics (stats)")
        self.raster = open_raster_cube(raster) if isinstance(raster, str) else raster
        climate_cube = open_climate_cube(climate) if isinstance(climate, str) else climate
        # sparse labelled points: one range per shard and batch, not one per run of adjacent chunks
        self.windows = ShardWindowReader(
            self.raster.url, self.raster.bands, "bands", threads, coalesce_bytes=SPARSE_COALESCE_BYTES
        )
        self.series = ClimateSeriesReader(climate_cube, self.raster.grid.epsg, months, climate_cache_chunks)
        self.patch_px, self.output, self.mask_channel = patch_px, output, mask_channel
        self.stats = NormStats.model_validate(stats) if stats is not None else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The samples of a batch of location rows (columns of `soilnet.data.locations`)."""
        x, y = np.asarray(batch["x"], dtype=np.float64), np.asarray(batch["y"], dtype=np.float64)
        row, col = self.raster.grid.rowcol(x, y)
        half = self.patch_px // 2
        image = self.windows.read_windows(row - half, col - half, self.patch_px)
        if self.output != "raw":
            image = decode(image.swapaxes(0, 1), self.raster.scale, self.raster.offset, self.raster.nodata)
            image = image.swapaxes(0, 1)
        out = {
            "image": image,
            "climate": self.series.read(x, y, np.asarray(batch["date"])),
            "target": label_matrix(batch),
            "x": x,
            "y": y,
            "id": np.asarray(batch["id"]).astype(str),
        }
        out.update({k: np.asarray(batch[k]) for k in PASSTHROUGH if k in batch})
        if self.output == "normalised":
            out = normalise_batch(out, self.stats, self.mask_channel)  # type: ignore[arg-type]
        return out


def epoch_table(
    locations: pd.DataFrame, cfg: StreamConfig, epochs: Sequence[int], world_size: int, shards: np.ndarray | None
) -> pd.DataFrame:
    """The location rows of the given epochs in order, each epoch padded for ``world_size`` workers."""
    frames = []
    for epoch in epochs:
        order = epoch_order(len(locations), cfg.shuffle, cfg.seed, epoch, shards)
        padded, valid = pad_order(order, world_size * cfg.batch_size)
        frame = locations.iloc[padded][location_columns(locations)].reset_index(drop=True)
        weight = frame.pop(WEIGHT).to_numpy(np.float32) if WEIGHT in frame.columns else np.float32(1.0)
        frames.append(frame.assign(epoch=np.int64(epoch), valid=valid * weight))
    return pd.concat(frames, ignore_index=True)


def _url(cube: RasterCube | ClimateCube | str) -> str:
    """The URL of a cube given opened or as its URL (what a reader actor opens)."""
    return cube if isinstance(cube, str) else cube.url


def build_dataset(
    locations: pd.DataFrame,
    raster: RasterCube | str,
    climate: ClimateCube | str,
    cfg: StreamConfig,
    epochs: Sequence[int] = (0,),
    world_size: int = 1,
    output: Output = "normalised",
    stats: NormStats | None = None,
) -> Any:
    """A Ray dataset streaming the samples of ``locations`` for ``epochs`` (see the module docstring).

    The reader actors open the cubes themselves, from their URLs; an opened `raster` is used here as is.
    """
    import ray.data

    missing = [c for c in COLUMNS if c not in locations.columns]
    if missing:
        raise ValueError(f"location table lacks columns {missing} (has {list(locations.columns)})")
    if len(locations) == 0:
        raise ValueError("location table is empty: nothing to stream")
    shards = None
    if cfg.shuffle == "shard":
        cube = open_raster_cube(raster) if isinstance(raster, str) else raster
        shards = shard_ids(cube.grid, cube.layout.shard, locations["x"].to_numpy(), locations["y"].to_numpy())
    table = epoch_table(locations, cfg, epochs, world_size, shards)
    block = cfg.read_batch_size * max(1, -(-len(table) // (cfg.read_batch_size * MAX_BLOCKS)))
    log.info("streaming %d locations x %d epochs (%d rows with padding)", len(locations), len(epochs), len(table))
    ds = ray.data.from_pandas([table.iloc[i : i + block] for i in range(0, len(table), block)])
    return ds.map_batches(
        SampleReader,
        fn_constructor_kwargs={
            "raster": _url(raster),
            "climate": _url(climate),
            "patch_px": cfg.patch_px,
            "months": cfg.months,
            "output": output,
            "stats": stats.model_dump() if stats is not None else None,
            "mask_channel": cfg.mask_channel,
            "threads": cfg.read_threads,
            "climate_cache_chunks": cfg.climate_cache_chunks,
        },
        batch_size=cfg.read_batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.reader_concurrency),
        num_cpus=cfg.reader_cpus,
    )


class TorchCollate(NumpyBatchCollateFn):
    """``collate_fn`` for ``iter_torch_batches``: numeric arrays become tensors, ``id`` stays strings."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Tensors of the numeric columns of a NumPy batch (copied: the batch may be read-only)."""
        import torch

        return {k: v if v.dtype.kind in "OUS" else torch.from_numpy(np.array(v)) for k, v in batch.items()}


#: The collate function of every ``iter_torch_batches`` call over a soilnet stream.
torch_collate = TorchCollate()
