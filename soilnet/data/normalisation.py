"""Normalisation statistics fitted on training rows only, stored as JSON with the run, applied per batch.

Images: per band, robust min/max (2nd / 98th percentiles, scaled to [0, 1]) or mean/std, over
valid pixels of a deterministic pixel sample of the training windows. Climate: per-variable
mean/std. Targets: mean/std (for a standardised loss; predictions are de-standardised).

Missing values: after normalisation image NaN (nodata, clouds, outside the cube) become 0, and,
when asked, a validity channel (1 where every band is valid, else 0) is appended so the model
can tell a true 0 from a gap. Climate NaN are kept: the climate encoders mask months whose
variables are all NaN and fill remaining NaN with 0, the training mean after normalisation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from soilnet import storage

log = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]


class NormStats(BaseModel):
    """Per-band image, per-variable climate and target statistics: value -> (value - center) / scale."""

    image_method: Literal["minmax", "standard"] = Field(description="Robust min/max or mean/std per band.")
    bands: list[str] = Field(description="Band names in channel order.")
    image_center: list[float] = Field(description="Per band: subtracted value (robust min or mean).")
    image_scale: list[float] = Field(description="Per band: divisor (robust range or std).")
    variables: list[str] = Field(description="Climate variable names in order.")
    climate_mean: list[float] = Field(description="Per variable mean.")
    climate_std: list[float] = Field(description="Per variable std.")
    target_mean: float | list[float] = Field(
        description="Mean of the training targets (0 when unlabelled); one per output with several (C1)."
    )
    target_std: float | list[float] = Field(
        description="Std of the training targets (1 when unlabelled); one per output (categorical: 0 and 1)."
    )
    class_weights: list[float] | None = Field(
        None,
        description="Several outputs: cross-entropy weight of each class of each categorical output, concatenated "
        "in output order (from the fold's training rows); None: no categorical output.",
    )
    n_rows: int = Field(ge=1, description="Training rows the statistics were computed from.")

    @model_serializer(mode="wrap")
    def _without_unused_class_weights(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No ``class_weights`` key without categorical outputs: one-target files (and their hashes) stay as before."""
        data = handler(self)
        if data.get("class_weights", 0) is None:
            data.pop("class_weights")
        return data


def _safe_scale(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values) & (values > 0), values, 1.0)


def fit_normalisation(
    train: pd.DataFrame,
    read: Callable[[Batch], Batch],
    bands: list[str],
    variables: list[str],
    method: Literal["minmax", "standard"] = "minmax",
    max_rows: int = 2048,
    pixels_per_window: int = 256,
    seed: int = 0,
    batch_size: int = 64,
) -> NormStats:
    """Statistics of the training rows ``train`` (a location table), read with ``read`` (decoded values).

    Only the given rows are read: pass the training split (never validation or test rows).
    At most ``max_rows`` rows (a seeded sample) and ``pixels_per_window`` pixels per window are used.
    """
    if len(train) == 0:
        raise ValueError("normalisation needs at least one training row, got an empty table")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(train), size=min(max_rows, len(train)), replace=False))
    pixels, series = [], []
    for start in range(0, len(rows), batch_size):
        part = train.iloc[rows[start : start + batch_size]]
        batch = read({c: part[c].to_numpy() for c in ("id", "x", "y", "date", "target")})
        image = batch["image"]
        flat = image.reshape(image.shape[0], image.shape[1], -1)
        pick = rng.integers(0, flat.shape[2], size=(flat.shape[0], pixels_per_window))
        pixels.append(np.take_along_axis(flat, pick[:, None, :], axis=2).transpose(1, 0, 2).reshape(len(bands), -1))
        series.append(batch["climate"].reshape(-1, len(variables)))
    pix = np.concatenate(pixels, axis=1).astype(np.float64)
    clim = np.concatenate(series).astype(np.float64)
    empty = [b for b, ok in zip(bands, np.isfinite(pix).any(axis=1), strict=True) if not ok]
    if empty:
        raise ValueError(f"bands {empty} have no valid pixel in the training windows")
    if method == "minmax":
        low, high = np.nanpercentile(pix, 2, axis=1), np.nanpercentile(pix, 98, axis=1)
        center, scale = low, _safe_scale(high - low)
    else:
        center, scale = np.nanmean(pix, axis=1), _safe_scale(np.nanstd(pix, axis=1))
    target = train["target"].to_numpy(dtype=np.float64)
    target = target[np.isfinite(target)]
    stats = NormStats(
        image_method=method,
        bands=list(bands),
        image_center=center.tolist(),
        image_scale=scale.tolist(),
        variables=list(variables),
        climate_mean=np.nan_to_num(np.nanmean(clim, axis=0)).tolist(),
        climate_std=_safe_scale(np.nanstd(clim, axis=0)).tolist(),
        target_mean=float(target.mean()) if target.size else 0.0,
        target_std=float(target.std()) if target.size > 1 and target.std() > 0 else 1.0,
        n_rows=len(rows),
    )
    log.info("normalisation (%s) fitted on %d training rows", method, len(rows))
    return stats


def normalise_batch(batch: Batch, stats: NormStats, mask_channel: bool = False) -> Batch:
    """A copy of a decoded batch with normalised ``image`` (NaN -> 0, optional validity channel) and ``climate``."""
    image = batch["image"]
    if image.shape[1] != len(stats.bands):
        raise ValueError(f"image has {image.shape[1]} channels, the statistics are for {len(stats.bands)} bands")
    center = np.asarray(stats.image_center, dtype=np.float32)[None, :, None, None]
    scale = np.asarray(stats.image_scale, dtype=np.float32)[None, :, None, None]
    valid = np.isfinite(image)
    out = np.where(valid, (image - center) / scale, 0.0).astype(np.float32)
    if mask_channel:
        out = np.concatenate([out, valid.all(axis=1, keepdims=True).astype(np.float32)], axis=1)
    mean = np.asarray(stats.climate_mean, dtype=np.float32)
    std = np.asarray(stats.climate_std, dtype=np.float32)
    return {**batch, "image": out, "climate": ((batch["climate"] - mean) / std).astype(np.float32)}


def save_stats(stats: NormStats, url: str) -> None:
    """Write the statistics as JSON (local path or s3:// URL), next to the run's other artefacts."""
    with storage.open_file(url, "w") as f:
        f.write(stats.model_dump_json(indent=2))


def load_stats(url: str) -> NormStats:
    """Read statistics written by `save_stats`; errors name the file."""
    with storage.open_file(url, "r") as f:
        try:
            return NormStats.model_validate(json.load(f))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{url}: not valid normalisation statistics: {exc}") from exc
