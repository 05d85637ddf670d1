"""SoilNet's late fusion of image and climate embeddings, and its image-/climate-only variants.

Forward input follows the Sample contract: ``image`` (B, C, P, P) float32 and ``climate``
(B, T, V) float32 (NaN or ``missing`` (B, T) marks missing months). Output is the head's dict:
``prediction`` (B, n_targets) and, with uncertainty, ``log_var`` (B, n_targets).
`head_inputs` collects the fused embeddings a model's head reads (the area of applicability's feature
space), whatever path the model takes to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from soilnet.models.encoder import ImageEncoder
from soilnet.models.heads import RegressionHead


@contextmanager
def head_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """While open, every input (N, D) of ``model.head`` is appended (detached) to the yielded list."""
    seen: list[torch.Tensor] = []
    handle = model.head.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach()))
    try:
        yield seen
    finally:
        handle.remove()


def _branch(in_dim: int, branch_dim: int | None) -> nn.Module:
    """Linear + ReLU to `branch_dim`, or the identity when no projection is wanted."""
    if branch_dim is None:
        return nn.Identity()
    return nn.Sequential(nn.Linear(in_dim, branch_dim), nn.ReLU())


class SoilNetModel(nn.Module):
    """Image encoder and/or climate encoder -> per-branch projection -> concat -> head."""

    def __init__(
        self,
        image_encoder: ImageEncoder | None,
        climate_encoder: nn.Module | None,
        branch_dim: int | None,
        head_hidden: list[int],
        n_targets: int = 1,
        uncertainty: bool = False,
        dropout: float = 0.0,
        image_dim: int | None = None,
    ) -> None:
        super().__init__()
        if image_encoder is None and climate_encoder is None:
            raise ValueError("a model needs an image encoder, a climate encoder or both")
        self.image_encoder = image_encoder
        self.climate_encoder = climate_encoder
        widths = []
        if image_encoder is not None:
            image_dim = image_dim or image_encoder.out_dim  # an INR feeds its own embedding width
            self.image_branch = _branch(image_dim, branch_dim)
            widths.append(branch_dim or image_dim)
        if climate_encoder is not None:
            self.climate_branch = _branch(climate_encoder.out_dim, branch_dim)
            widths.append(branch_dim or climate_encoder.out_dim)
        self.head = RegressionHead(sum(widths), head_hidden, n_targets, uncertainty, dropout)

    def embed(self, image_features: torch.Tensor | None, climate_features: torch.Tensor | None) -> torch.Tensor:
        """The fused embedding the head reads (N, D): the projected branch features, concatenated."""
        parts = []
        if self.image_encoder is not None:
            parts.append(self.image_branch(image_features))
        if self.climate_encoder is not None:
            parts.append(self.climate_branch(climate_features))
        return torch.cat(parts, dim=-1)

    def fuse(
        self, image_features: torch.Tensor | None, climate_features: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Head output from encoder features (N, D_image) and/or (N, D_climate)."""
        return self.head(self.embed(image_features, climate_features))

    def encode_climate(self, climate: torch.Tensor | None, missing: torch.Tensor | None) -> torch.Tensor | None:
        """Climate features (B, D), or None for an image-only model."""
        if self.climate_encoder is None:
            return None
        if climate is None:
            raise ValueError("this model has a climate branch: pass climate (B, T, V)")
        return self.climate_encoder(climate, missing)

    def forward(
        self,
        image: torch.Tensor | None = None,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predictions for a batch of windows."""
        image_features = None
        if self.image_encoder is not None:
            if image is None:
                raise ValueError("this model has an image branch: pass image (B, C, P, P)")
            image_features = self.image_encoder(image)
        return self.fuse(image_features, self.encode_climate(climate, missing))

    def predict_dense(
        self,
        tile: torch.Tensor,
        climate: torch.Tensor | None,
        window: int,
        stride: int,
        missing: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predictions (B, n_targets, gh, gw) from one encoder pass over whole tiles.

        Window (i, j) starts at pixel (i * stride, j * stride). `climate` is one series per tile
        (B, T, V), shared by all its windows. Fast and approximate: see
        `ImageEncoder.forward_dense` for where this equals per-window prediction.
        """
        if self.image_encoder is None:
            raise ValueError("the dense mode needs a model with an image branch")
        features = self.image_encoder.forward_dense(tile, window, stride)
        b, d, gh, gw = features.shape
        image_features = features.permute(0, 2, 3, 1).reshape(b * gh * gw, d)
        climate_features = self.encode_climate(climate, missing)
        if climate_features is not None:
            climate_features = climate_features.repeat_interleave(gh * gw, dim=0)
        out = self.fuse(image_features, climate_features)
        return {k: v.reshape(b, gh, gw, -1).permute(0, 3, 1, 2) for k, v in out.items()}
