"""Configuration of the training-sample stream: patches, series, locations, batching, readers."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from soilnet.configbase import StrictModel


class StreamConfig(StrictModel):
    """How training samples are located, read from the cubes and batched (Ray Data)."""

    patch_px: int = Field(64, ge=8, le=1024, description="Side of the square image window in pixels.")
    months: int = Field(61, ge=1, le=600, description="Months of climate series ending at the sampling month.")
    batch_size: int = Field(32, ge=1, description="Samples per training batch (per worker).")
    read_batch_size: int = Field(
        64, ge=1, description="Locations a reader actor reads together; chunks shared inside one read are fetched once."
    )
    reader_concurrency: int = Field(2, ge=1, description="Reader actors (each opens the cubes once).")
    reader_cpus: float = Field(0.5, gt=0, description="CPUs reserved per reader actor (leave CPUs for training).")
    read_threads: int = Field(16, ge=1, le=256, description="Concurrent range requests per reader actor.")
    buffer_px: float = Field(
        448.0, ge=0, description="Unlabelled locations keep this many pixels from every excluded labelled point."
    )
    max_masked_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="Drop unlabelled locations whose patch is more masked than this."
    )
    n_unlabelled: int = Field(10_000, ge=0, description="Unlabelled (self-supervised) locations to draw.")
    unlabelled_end_month: str = Field(
        "2018-12", description="Last month (YYYY-MM) of the climate series of unlabelled locations."
    )
    seed: int = Field(0, ge=0, description="Seed of unlabelled locations and of every epoch's order.")
    shuffle: Literal["none", "global", "shard"] = Field(
        "global",
        description="Epoch order: none (table order), global (uniform shuffle, for sparse labelled points) or "
        "shard (shards shuffled, then locations within a shard; a read serves many windows, for pretraining).",
    )
    mask_channel: bool = Field(
        False, description="Append a validity channel (1 where every band is valid) to normalised images."
    )
    climate_cache_chunks: int = Field(
        256, ge=1, description="Climate chunks (whole series of a block of cells) each reader keeps in memory."
    )

    @field_validator("unlabelled_end_month")
    @classmethod
    def _month(cls, value: str) -> str:
        try:
            np.datetime64(value, "M")
        except ValueError as exc:
            raise ValueError(f"unlabelled_end_month {value!r} is not a YYYY-MM month") from exc
        return value
