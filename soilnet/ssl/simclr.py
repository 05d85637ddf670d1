"""SimCLR: NT-Xent between two augmented views of the same image."""

from __future__ import annotations

import torch

from soilnet.models.encoder import ImageEncoder
from soilnet.ssl.config import SSLConfig
from soilnet.ssl.losses import LossOutput, nt_xent
from soilnet.ssl.objective import SSLObjective, augment_view, projection_head


class SimCLRObjective(SSLObjective):
    """Encoder + projection head; two views per image drawn on the device each step."""

    def __init__(self, image_encoder: ImageEncoder, cfg: SSLConfig) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.projection = projection_head(image_encoder.out_dim, cfg.projection_hidden, cfg.projection_dim)
        self.cfg = cfg

    def forward(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> LossOutput:
        """NT-Xent over the 2B views (climate is ignored)."""
        views = torch.cat([augment_view(image, self.cfg.augment) for _ in range(2)])
        z1, z2 = self.projection(self.image_encoder(views)).chunk(2)
        return nt_xent(z1, z2, self.cfg.temperature)
