"""MISO's geo-aware multimodal contrastive terms over INR query points, as an SSL objective and a fine-tuning term.

Each window is queried at its centre (where a labelled sample lies) and at ``n_queries`` random points
(unlabelled): `soilnet.models.inr_model.INRSoilModel.forward` with ``location``. Two symmetric InfoNCE
terms on L2-normalised embeddings, temperature 0.1 and weight 0.1 each (MISO's defaults,
`soilnet.ssl.config.GeoContrastiveConfig`):

- image <-> climate: the image branch at the window's centre and the climate branch of its series;
- fused image <-> location: for each query index, the fused embedding the head reads and the location
  encoder's embedding of the query's coordinates; positives are the same window, negatives the other
  windows of the batch (MISO pairs query i of every sample the same way).

Padding rows (``valid == 0``) stay out of both terms. `GeoContrastiveObjective` is the pretraining
objective (no labels: every point is unlabelled); fine-tuning adds `geo_contrastive_loss` of the same
forward pass to the supervised loss of the labelled centres.
"""

from __future__ import annotations

import torch

from soilnet.models.inr_model import INRSoilModel
from soilnet.ssl.config import GeoContrastiveConfig
from soilnet.ssl.losses import LossOutput, info_nce
from soilnet.ssl.objective import SSLObjective


def geo_contrastive_loss(
    out: dict[str, torch.Tensor], cfg: GeoContrastiveConfig, valid: torch.Tensor | None = None
) -> LossOutput:
    """The weighted InfoNCE terms of an INR model's outputs with location (`INRSoilModel.forward`)."""
    fused, places = out["fused"], out["places"]
    keep = slice(None) if valid is None else valid > 0
    per_query = [info_nce(fused[keep, q], places[keep, q], cfg.temperature) for q in range(fused.shape[1])]
    image_location = torch.stack([t.loss for t in per_query]).mean()
    loss = cfg.image_location_weight * image_location
    monitors = {"nce_image_location": image_location.detach()}
    std = torch.stack([t.embedding_std for t in per_query]).min()
    if "climate_embedding" in out:
        image_climate = info_nce(out["image_embedding"][keep], out["climate_embedding"][keep], cfg.temperature)
        loss = loss + cfg.image_climate_weight * image_climate.loss
        monitors["nce_image_climate"] = image_climate.loss.detach()
        std = torch.minimum(std, image_climate.embedding_std)
    return LossOutput(loss, std, monitors)


class GeoContrastiveObjective(SSLObjective):
    """Pretraining with the geo-contrastive terms alone (no labels) over an INR model's encoders.

    Reads each window's sample location (``uses_location``). No image augmentation: it would move the
    pixels away from the query coordinates. The head gets no gradient here and is frozen.
    """

    uses_location = True

    def __init__(self, model: INRSoilModel, cfg: GeoContrastiveConfig) -> None:
        super().__init__()
        if model.location_encoder is None:
            raise ValueError("ssl.objective 'geo_contrastive' needs model.location in the recipe")
        model.head.requires_grad_(False)
        self.model, self.cfg = model, cfg
        self.image_encoder = model.image_encoder
        self.climate_encoder = model.climate_encoder

    def forward(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
        location: torch.Tensor | None = None,
    ) -> LossOutput:
        """The weighted InfoNCE terms of one batch; `location` is each window's sample x/y (B, 2)."""
        if location is None:
            raise ValueError("the geo_contrastive objective needs each sample's x/y (location)")
        return geo_contrastive_loss(self.model(image, climate, missing, location, self.cfg.n_queries), self.cfg)
