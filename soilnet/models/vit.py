"""Vision Transformer image encoder from timm (64 px / patch 8, ViT-B/16 at 224 px, tiny ViTs)."""

from __future__ import annotations

from typing import Literal

import torch
from timm.models.vision_transformer import checkpoint_filter_fn
from torch import nn

from soilnet.models.encoder import ImageEncoder, create_timm_backbone


class ViTEncoder(ImageEncoder):
    """timm ViT -> class token or mean of patch tokens -> (B, embed_dim).

    Built with ``dynamic_img_size`` so inputs of other sizes than `img_size` (DINO's local crops,
    whole tiles in the dense mode) get interpolated position embeddings.
    """

    def __init__(
        self,
        timm_name: str,
        in_chans: int,
        img_size: int,
        global_pool: Literal["avg", "token"] = "avg",
        patch_size: int | None = None,
        embed_dim: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
    ) -> None:
        super().__init__()
        overrides = dict(patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads)
        kwargs = {k: v for k, v in overrides.items() if v is not None}
        self.backbone = create_timm_backbone(
            timm_name,
            "VisionTransformer",
            ("patch_embed", "blocks", "fc_norm", "num_prefix_tokens"),
            in_chans=in_chans,
            img_size=img_size,
            global_pool=global_pool,
            dynamic_img_size=True,
            **kwargs,
        )
        self.cell = int(self.backbone.patch_embed.patch_size[0])
        if img_size % self.cell:
            raise ValueError(f"image.img_size {img_size} is not a multiple of the patch {self.cell}")
        self.global_pool = global_pool
        self.out_dim = int(self.backbone.num_features)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, embed_dim)."""
        return self.backbone(image)

    def tokens(self, image: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, N, embed_dim) after the last block, prefix tokens removed."""
        return self.backbone.forward_features(image)[:, self.backbone.num_prefix_tokens :]

    def dense_features(self, tile: torch.Tensor) -> torch.Tensor:
        """Patch-token grid (B, embed_dim, H / patch, W / patch) of one pass over the tile."""
        if self.global_pool != "avg":
            raise ValueError("the ViT dense mode needs image.global_pool 'avg', not 'token'")
        b, _, h, w = tile.shape
        grid = self.tokens(tile).reshape(b, h // self.cell, w // self.cell, -1)
        return grid.permute(0, 3, 1, 2)

    @property
    def stage_channels(self) -> list[int]:
        """Token width of each stage: the outputs of up to 4 evenly spaced blocks, the last included."""
        return [int(self.backbone.num_features)] * len(self.stage_blocks)

    @property
    def stage_blocks(self) -> list[int]:
        """Indices of the blocks whose token grids are the stages (up to 4, evenly spaced, the last included)."""
        depth = len(self.backbone.blocks)
        n = min(4, depth)
        return sorted({depth - 1 - round(i * depth / n) for i in range(n)})

    def stage_features(self, tile: torch.Tensor) -> list[torch.Tensor]:
        """Token grids (B, embed_dim, H / patch, W / patch) after each stage block (timm intermediates)."""
        return self.backbone.forward_intermediates(
            tile, indices=self.stage_blocks, output_fmt="NCHW", intermediates_only=True
        )

    def outside_stages(self) -> list[nn.Module]:
        """The final norms: stage token grids are taken before them."""
        return [self.backbone.norm, self.backbone.fc_norm]

    def finish_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """The norm timm applies after mean pooling."""
        return self.backbone.fc_norm(pooled)

    def fit_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Resample position embeddings and patch kernels of other sizes (timm's filter), and
        move the final LayerNorm between ``norm`` (class-token pooling) and ``fc_norm`` (mean
        pooling) when the weights come from a model pooled the other way."""
        state = checkpoint_filter_fn(state, self.backbone)
        wanted = set(self.backbone.state_dict())
        for have, want in (("norm.", "fc_norm."), ("fc_norm.", "norm.")):
            if f"{want}weight" in wanted and f"{want}weight" not in state:
                state = {(want + k[len(have) :] if k.startswith(have) else k): v for k, v in state.items()}
        return state
