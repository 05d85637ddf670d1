"""What every SSL objective offers to the training loop."""

from __future__ import annotations

import abc

import torch
from torch import nn

from soilnet.models.heads import MLPHead
from soilnet.ssl.augment import flip_rot90, random_resized_crops
from soilnet.ssl.config import AugmentConfig
from soilnet.ssl.losses import LossOutput


class SSLObjective(nn.Module, abc.ABC):
    """An SSL objective: ``forward(image, climate, missing) -> LossOutput``.

    `after_step(step, total_steps)` runs after each optimiser step (EMA teachers); the encoders
    to keep for fine-tuning are exposed as `image_encoder` (and `climate_encoder`). An objective
    with ``uses_location`` also takes each sample's projected x/y as ``location`` (B, 2).
    """

    uses_location: bool = False

    @abc.abstractmethod
    def forward(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> LossOutput:
        """The loss and collapse monitor for one batch."""

    def after_step(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step; nothing by default."""


def projection_head(in_dim: int, hidden: list[int], out_dim: int | None) -> nn.Module:
    """An MLP projection head for contrastive learning, or the identity when `out_dim` is None."""
    return nn.Identity() if out_dim is None else MLPHead(in_dim, hidden, out_dim)


def augment_view(images: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """One augmented view of a batch: optional resized crop (same size), then flip/rot90."""
    if cfg.crop_scale is not None:
        images = random_resized_crops(images, images.shape[-1], cfg.crop_scale, cfg.max_rotation_degrees)
    return flip_rot90(images) if cfg.flip_rot90 else images
