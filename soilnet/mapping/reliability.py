"""The map layers of a calibrated bundle: prediction intervals, dissimilarity index and AOA (contract C2).

A bundle calibrated on its folds (`soilnet.training.reliability`) names ``intervals.json`` (conformal
quantiles per continuous target) and ``aoa.npz`` (the area-of-applicability reference) in its meta.
For each such target ``t`` and level L the map gets ``t_lower_<pct>`` and ``t_upper_<pct>`` (ensemble
mean -/+ the pooled quantile times the ensemble std, in the target's units); with the AOA reference,
``di`` (float32, distance of the pixel's embedding to the nearest training point / mean distance
between training points) and ``aoa`` (uint8: 1 inside, 0 outside, 255 nodata). Nothing here imports
torch: the driver learns the layer names from the files (`calibrated_layers`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from soilnet import storage
from soilnet.evaluation.aoa import AOAReference, load_aoa
from soilnet.evaluation.conformal import IntervalCalibration, level_name, load_calibrations
from soilnet.mapping.map_cube import AOA_LAYER, AOA_NODATA, BOUNDS, DI_LAYER, MapCube


def interval_layers(target: str, levels: list[float]) -> list[str]:
    """Interval layer names of one target, level by level."""
    return [f"{target}_{bound}_{level_name(level)}" for level in levels for bound in BOUNDS]


@dataclass
class MapReliability:
    """Conformal quantiles of the bundle's continuous targets (in the order of the map's mean and std rows) and its
    AOA reference, as the predictors use them."""

    targets: list[str]
    calibrations: dict[str, IntervalCalibration]
    aoa: AOAReference | None

    @property
    def layers(self) -> list[str]:
        """Names of the layers this adds to a map, in order: intervals per target, then ``di`` and ``aoa``."""
        cals = self.calibrations
        names = [n for t in self.targets if t in cals for n in interval_layers(t, list(cals[t].levels))]
        return names + ([DI_LAYER, AOA_LAYER] if self.aoa is not None else [])

    def interval_layers(self, mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
        """Lower and upper bounds (h, w) float32 of every calibrated target from mean and std (targets, h, w)."""
        out = {}
        for i, target in enumerate(self.targets):
            cal = self.calibrations.get(target)
            if cal is None:
                continue
            for level in cal.levels:
                lower, upper = cal.bounds(mean[i], std[i], level)
                pct = level_name(level)
                out[f"{target}_lower_{pct}"] = lower.astype(np.float32)
                out[f"{target}_upper_{pct}"] = upper.astype(np.float32)
        return out

    def aoa_layers(self, embedding: np.ndarray, height: int, width: int) -> dict[str, np.ndarray]:
        """``di`` (h, w) float32 and ``aoa`` (h, w) uint8 from the first fold model's embeddings (h * w, D).

        A pixel whose embedding is not finite gets DI NaN and AOA nodata.
        """
        if self.aoa is None:
            return {}
        finite = np.isfinite(embedding).all(axis=1)
        di = np.full(embedding.shape[0], np.nan)
        di[finite] = self.aoa.dissimilarity(embedding[finite])
        aoa = np.where(finite, self.aoa.inside(di), AOA_NODATA)
        return {
            DI_LAYER: di.reshape(height, width).astype(np.float32),
            AOA_LAYER: aoa.reshape(height, width).astype(np.uint8),
        }


def load_reliability(bundle_url: str) -> MapReliability | None:
    """The calibration a bundle folder names in its meta (None when it names none)."""
    with storage.open_file(storage.join(bundle_url, "meta.json"), "r") as f:
        meta = json.load(f)
    if not meta.get("intervals") and not meta.get("aoa"):
        return None
    calibrations = load_calibrations(storage.join(bundle_url, meta["intervals"])) if meta.get("intervals") else {}
    aoa = load_aoa(storage.join(bundle_url, meta["aoa"])) if meta.get("aoa") else None
    kinds = meta.get("kinds") or ["continuous"] * len(meta["targets"])
    continuous = [t for t, kind in zip(meta["targets"], kinds, strict=True) if kind == "continuous"]
    return MapReliability(continuous, calibrations, aoa)


def calibrated_layers(bundle_url: str) -> list[str]:
    """The layers a bundle folder's calibration adds to a map (none for an uncalibrated bundle)."""
    reliability = load_reliability(bundle_url)
    return reliability.layers if reliability is not None else []


def aoa_fraction(cube: MapCube, block_px: int = 4096) -> float | None:
    """Share of the mapped pixels inside the area of applicability, read block by block (None without ``aoa``)."""
    if AOA_LAYER not in cube.layers:
        return None
    inside = mapped = 0
    for row0, col0, height, width in cube.grid.tiles(block_px):
        values = cube.read(AOA_LAYER, row0, col0, height, width)
        inside += int((values == 1).sum())
        mapped += int((values != AOA_NODATA).sum())
    return inside / mapped if mapped else float("nan")
