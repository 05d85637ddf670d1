"""SSL-SoilNet's cross-modal contrastive pretraining: image <-> climate of the same location."""

from __future__ import annotations

import torch
from torch import nn

from soilnet.models.encoder import ImageEncoder
from soilnet.ssl.config import SSLConfig
from soilnet.ssl.losses import LossOutput, info_nce
from soilnet.ssl.objective import SSLObjective, augment_view, projection_head


class CrossModalObjective(SSLObjective):
    """InfoNCE between projected image and climate embeddings; only the image is augmented."""

    def __init__(self, image_encoder: ImageEncoder, climate_encoder: nn.Module, cfg: SSLConfig):
        super().__init__()
        if cfg.projection_dim is None and image_encoder.out_dim != climate_encoder.out_dim:
            raise ValueError(
                f"without ssl.projection_dim the image ({image_encoder.out_dim}) and climate "
                f"({climate_encoder.out_dim}) embeddings must have the same width"
            )
        self.image_encoder = image_encoder
        self.climate_encoder = climate_encoder
        self.image_projection = projection_head(image_encoder.out_dim, cfg.projection_hidden, cfg.projection_dim)
        self.climate_projection = projection_head(climate_encoder.out_dim, cfg.projection_hidden, cfg.projection_dim)
        self.cfg = cfg

    def forward(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> LossOutput:
        """Symmetric (or one-way) InfoNCE over the batch."""
        if climate is None:
            raise ValueError("the cross_modal objective needs climate (B, T, V)")
        z_image = self.image_projection(self.image_encoder(augment_view(image, self.cfg.augment)))
        z_climate = self.climate_projection(self.climate_encoder(climate, missing))
        return info_nce(z_image, z_climate, self.cfg.temperature, self.cfg.symmetric)
