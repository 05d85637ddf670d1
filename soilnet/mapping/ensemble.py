"""The tile predictor: a fold ensemble with its normalisation, from decoded tiles to map layers.

A tile arrives decoded (band, H, W) with NaN for nodata, with one climate series per climate
pixel it touches (S, T, V) and the index (h, w) of each output pixel's series. Every output
pixel's window is cut in memory (``windows`` mode, exact) or the encoder runs once over the
tile (``dense`` mode, see `ImageEncoder.forward_dense`). Each climate series is encoded once
per model, not once per window. Layers: the ensemble mean, the predictive std (spread across
folds plus, for heads that predict it, the mean aleatoric variance), in target units, the
same combination as `soilnet.recipes.bundle.ensemble_outputs`, for the continuous outputs; each categorical
output's class code, class probabilities (the fold mean of each model's softmax) and entropy
(`soilnet.mapping.classes`); with a calibrated bundle
(`soilnet.mapping.reliability`) also the interval bounds and, from the first fold model's head inputs,
the dissimilarity index and area of applicability.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from soilnet.data.normalisation import NormStats, normalise_batch
from soilnet.data.targets import TargetOutput
from soilnet.mapping.classes import class_layers
from soilnet.mapping.reliability import MapReliability
from soilnet.models.dense import cut_windows
from soilnet.models.fusion import SoilNetModel, head_inputs
from soilnet.models.inr_model import INRSoilModel
from soilnet.recipes.bundle import Scaling, ensemble_outputs

log = logging.getLogger(__name__)

Mode = Literal["windows", "dense"]


class TilePredictor(Protocol):
    """What the map job needs from a model: shapes, names and tile prediction (its hash: `ModelCard`)."""

    bands: list[str]
    variables: list[str]
    patch: int
    months: int

    def predict_tile(
        self, image: np.ndarray, series: np.ndarray, index: np.ndarray, stride: int, mode: Mode, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Mean and std (continuous targets, h, w) of a decoded (band, H, W) tile with climate series (S, T, V),
        and further layers (h, w) by name: class layers, the calibration's (intervals, ``di``, ``aoa``)."""


@dataclass
class Ensemble:
    """Fold models of one recipe and the training split's normalisation statistics."""

    models: Sequence[SoilNetModel]
    stats: NormStats
    patch: int
    months: int
    mask_channel: bool = False
    target_scaling: Sequence[Scaling] = ()
    device: str = "cpu"
    reliability: MapReliability | None = None
    #: The head's outputs (`soilnet.recipes.bundle.BundleMeta.outputs`); empty: one continuous output per column.
    outputs: Sequence[TargetOutput] = ()

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("an ensemble needs at least one model")
        if not self.target_scaling:
            self.target_scaling = [(self.stats.target_mean, self.stats.target_std)] * len(self.models)
        if len(self.target_scaling) != len(self.models):
            raise ValueError(f"{len(self.target_scaling)} target scalings for {len(self.models)} models")
        for model in self.models:
            model.eval().to(self.device)

    @property
    def bands(self) -> list[str]:
        """Raster bands the models read, in channel order."""
        return list(self.stats.bands)

    @property
    def variables(self) -> list[str]:
        """Climate variables the models read, in order."""
        return list(self.stats.variables)

    def _inputs(self, image: np.ndarray, series: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        batch = normalise_batch({"image": image[None], "climate": series}, self.stats, self.mask_channel)
        return torch.from_numpy(batch["image"]).to(self.device), torch.from_numpy(batch["climate"]).to(self.device)

    @staticmethod
    def _image_features(
        model: SoilNetModel, tile: torch.Tensor, window: int, stride: int, mode: Mode, batch_size: int
    ) -> torch.Tensor:
        """Pooled encoder features (h * w, D) of every output pixel's window of a normalised tile."""
        if isinstance(model, INRSoilModel):  # the INR embedding at each output pixel's centre
            return model.grid_features(tile, window, stride, mode == "dense", batch_size)
        if mode == "dense":
            features = model.image_encoder.forward_dense(tile, window, stride)
            return features[0].permute(1, 2, 0).reshape(-1, features.shape[1])
        windows = cut_windows(tile, window, stride)[0]
        flat = windows.reshape(-1, *windows.shape[2:])
        return torch.cat([model.image_encoder(flat[i : i + batch_size]) for i in range(0, flat.shape[0], batch_size)])

    @torch.no_grad()
    def _model_outputs(
        self, model: SoilNetModel, tile: torch.Tensor, climate: torch.Tensor, index: torch.Tensor, stride: int,
        mode: Mode, batch_size: int,
    ) -> dict[str, torch.Tensor]:  # fmt: skip
        """Head outputs (h * w, targets) of one model over a normalised tile; each series encoded once."""
        series_features = model.encode_climate(climate, None)
        climate_features = None if series_features is None else series_features[index.reshape(-1)]
        image_features = None
        if model.image_encoder is not None:
            image_features = self._image_features(model, tile, self.patch, stride, mode, batch_size)
        return model.fuse(image_features, climate_features)

    @torch.no_grad()
    def embed_tile(self, image: np.ndarray, stride: int, mode: Mode, batch_size: int) -> np.ndarray:
        """The first model's image-encoder embeddings (h * w, D) of a decoded tile (feature-space maps)."""
        model = self.models[0]
        if model.image_encoder is None:
            raise ValueError("feature-space maps need a model with an image encoder")
        empty = np.zeros((1, self.months, len(self.variables)), dtype=np.float32)
        tile, _ = self._inputs(image, empty)
        return self._image_features(model, tile, self.patch, stride, mode, batch_size).float().cpu().numpy()

    def predict_tile(
        self, image: np.ndarray, series: np.ndarray, index: np.ndarray, stride: int, mode: Mode, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Ensemble mean and std (continuous targets, h, w) in target units for every output pixel of a tile, the
        class layers of each categorical output, and the calibration's layers (`MapReliability`) from the means
        and stds and the first fold model's head inputs."""
        if image.shape[0] != len(self.bands):
            raise ValueError(f"tile has {image.shape[0]} bands, the model reads {len(self.bands)} ({self.bands})")
        if series.ndim != 3 or series.shape[1:] != (self.months, len(self.variables)):
            raise ValueError(
                f"climate series are {series.shape}, the model reads (S, {self.months}, {len(self.variables)})"
            )
        h, w = index.shape
        tile, climate = self._inputs(image, series)
        index_t = torch.from_numpy(index.astype(np.int64)).to(self.device)
        with head_inputs(self.models[0]) as first:
            outs = [self._model_outputs(m, tile, climate, index_t, stride, mode, batch_size) for m in self.models]
        width = outs[0]["prediction"].shape[1]
        outputs = list(self.outputs) or [TargetOutput(str(k), str(k), "continuous") for k in range(width)]
        combined = ensemble_outputs(outs, self.target_scaling, outputs)

        def as_map(values: torch.Tensor) -> np.ndarray:
            """(h * w,) or (h * w, K) per-pixel values -> (K, h, w) float32 maps."""
            return values.reshape(h * w, -1).T.reshape(-1, h, w).float().cpu().numpy()

        continuous = [combined[o.name] for o in outputs if not o.categorical]
        none = np.zeros((0, h, w), dtype=np.float32)
        mean_map = np.concatenate([as_map(c["mean"]) for c in continuous]) if continuous else none
        std_map = np.concatenate([as_map(c["std"]) for c in continuous]) if continuous else none.copy()
        layers: dict[str, np.ndarray] = {}
        for output in (o for o in outputs if o.categorical):
            layers |= class_layers(output.name, output.classes, as_map(combined[output.name]["probabilities"]))
        if self.reliability is None:
            return mean_map, std_map, layers
        layers |= self.reliability.interval_layers(mean_map, std_map)
        if self.reliability.aoa is not None:
            layers |= self.reliability.aoa_layers(torch.cat(first).float().cpu().numpy(), h, w)
        return mean_map, std_map, layers
