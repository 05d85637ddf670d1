"""The interface every image encoder offers: pooled features, dense features, freezing, weights."""

from __future__ import annotations

import abc
import logging
import os

import timm
import torch
from torch import nn

from soilnet.models.channels import adapt_first_layer
from soilnet.models.checkpoint import read_state_dict

log = logging.getLogger(__name__)


def create_timm_backbone(name: str, family: str, required: tuple[str, ...], **kwargs: object) -> nn.Module:
    """A randomly initialised timm model `name` without classifier; checks it is a `family`."""
    if not timm.is_model(name):
        raise ValueError(f"image.timm_name {name!r} is not a timm model")
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    except TypeError as exc:  # keyword arguments of another model family
        raise ValueError(f"image.timm_name {name!r} is not a timm {family}: {exc}") from exc
    if not all(hasattr(model, attr) for attr in required):
        raise ValueError(f"image.timm_name {name!r} is not a timm {family}")
    return model


class ImageEncoder(nn.Module, abc.ABC):
    """A timm backbone wrapped to map (B, C, P, P) to pooled features (B, out_dim).

    Subclasses set `backbone`, `out_dim` and `cell` (input pixels per dense feature cell).
    """

    backbone: nn.Module
    out_dim: int
    cell: int

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False

    def freeze(self) -> None:
        """Stop gradients to every parameter and keep the encoder in eval mode."""
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ImageEncoder:
        """Switch train/eval mode; a frozen encoder stays in eval mode (fixed BatchNorm)."""
        return super().train(mode and not self.frozen)

    def forward_dense(self, tile: torch.Tensor, window: int, stride: int) -> torch.Tensor:
        """Window-pooled features (B, out_dim, gh, gw) from one forward pass over a whole tile.

        Window (i, j) covers pixels [i*stride, i*stride + window) x [j*stride, j*stride + window);
        ``gh = (H - window) // stride + 1``. `window` and `stride` must be multiples of `cell`.
        When the tile is a single window this equals `forward` exactly; on larger tiles each
        window's features also see context outside the window (convolution receptive fields,
        GLAM's and ViT's global attention, interpolated ViT positions), so values differ from
        encoding the window alone. Use `soilnet.models.dense.predict_tile` for exact results.
        """
        for name, value in (("window", window), ("stride", stride)):
            if value <= 0 or value % self.cell:
                raise ValueError(f"dense {name} {value} px must be a positive multiple of {self.cell}")
        _, _, h, w = tile.shape
        if h < window or w < window or h % self.cell or w % self.cell:
            raise ValueError(
                f"tile {h}x{w} px must be at least the {window} px window and a multiple of {self.cell} px"
            )
        cells = self.dense_features(tile)
        pooled = nn.functional.avg_pool2d(cells, window // self.cell, stride // self.cell)
        return self.finish_pooled(pooled.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    @abc.abstractmethod
    def dense_features(self, tile: torch.Tensor) -> torch.Tensor:
        """Unpooled features (B, D, H / cell, W / cell) of a tile."""

    @property
    @abc.abstractmethod
    def stage_channels(self) -> list[int]:
        """Channels of each feature stage that `stage_features` returns."""

    @abc.abstractmethod
    def stage_features(self, tile: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps (B, C_s, H_s, W_s) of the encoder's stages, fine to coarse (INR inputs)."""

    def outside_stages(self) -> list[nn.Module]:
        """Parts `stage_features` never runs (a ViT's final norms); none unless overridden."""
        return []

    def finish_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """What the encoder applies after pooling (channels last); identity unless overridden."""
        return pooled

    def load_pretrained(self, url: str | os.PathLike[str], pretrained_bands: list[int]) -> None:
        """Load backbone weights from a file or object-store URL, adapting the input bands."""
        timm_cfg = self.backbone.pretrained_cfg
        first_layer = f"{timm_cfg['first_conv']}.weight"
        classifier = f"{timm_cfg['classifier']}."
        state = {k: v for k, v in read_state_dict(url).items() if not k.startswith(classifier)}
        n_bands = self.backbone.state_dict()[first_layer].shape[1]
        state = self.fit_state(adapt_first_layer(state, first_layer, n_bands, pretrained_bands))
        try:
            result = self.backbone.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # tensor shapes differ
            raise ValueError(f"{os.fspath(url)}: pretrained weights do not fit: {exc}") from exc
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"{os.fspath(url)}: pretrained weights do not fit {type(self).__name__}; "
                f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
            )
        log.info("loaded pretrained backbone from %s (%d tensors)", os.fspath(url), len(state))

    def fit_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Family-specific resizing of pretrained tensors; identity unless overridden."""
        return state
