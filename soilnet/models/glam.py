"""GLAM: global-local attention (Song et al. 2022), as SoilNet places it after ResNet layer 2.

Four attentions over a feature map F (B, C, H, W):
local channel (ECA-style 1-D conv over pooled channels), local spatial (dilated convolutions),
global channel (C x C attention) and global spatial (HW x HW attention). The local branch is
F * a_lc * a_ls, the global branch applies channel then spatial global attention, and the output
is a learned softmax-weighted sum of F, the local branch and the global branch.

The global spatial attention costs O((HW)^2): cheap on 64 px patches (8 x 8 after layer 2),
quadratic on whole tiles in the dense mode.
"""

from __future__ import annotations

import torch
from torch import nn


class LocalChannelAttention(nn.Module):
    """Channel weights from a 1-D convolution over the globally pooled channel descriptor."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, C, 1, 1) in (0, 1)."""
        pooled = x.mean(dim=(2, 3)).unsqueeze(1)
        return torch.sigmoid(self.conv(pooled)).transpose(1, 2).unsqueeze(-1)


class LocalSpatialAttention(nn.Module):
    """A spatial weight map from multi-dilation 3x3 convolutions of a reduced feature map."""

    def __init__(self, channels: int, reduced: int, dilations: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.branches = nn.ModuleList(nn.Conv2d(reduced, reduced, 3, padding=d, dilation=d) for d in dilations)
        self.merge = nn.Conv2d(reduced * (len(dilations) + 1), 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention map (B, 1, H, W) in (0, 1)."""
        r = self.reduce(x)
        feats = torch.cat([r, *(branch(r) for branch in self.branches)], dim=1)
        return torch.sigmoid(self.merge(feats))


class GlobalChannelAttention(nn.Module):
    """C x C attention: queries and keys from the pooled descriptor, values the channel maps."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.query = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.key = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-mixed feature map (B, C, H, W)."""
        b, c, h, w = x.shape
        pooled = x.mean(dim=(2, 3)).unsqueeze(1)
        q = torch.sigmoid(self.query(pooled)).transpose(1, 2)  # (B, C, 1)
        k = torch.sigmoid(self.key(pooled))  # (B, 1, C)
        attn = torch.softmax(q @ k, dim=-1)  # (B, C, C)
        return (attn @ x.reshape(b, c, h * w)).reshape(b, c, h, w)


class GlobalSpatialAttention(nn.Module):
    """HW x HW scaled dot-product attention over positions with 1x1 projections."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, reduced, 1)
        self.key = nn.Conv2d(channels, reduced, 1)
        self.value = nn.Conv2d(channels, reduced, 1)
        self.out = nn.Conv2d(reduced, channels, 1)
        self.scale = reduced**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Position-mixed feature map (B, C, H, W)."""
        b, _, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, r)
        k = self.key(x).flatten(2)  # (B, r, HW)
        v = self.value(x).flatten(2).transpose(1, 2)  # (B, HW, r)
        attn = torch.softmax((q @ k) * self.scale, dim=-1)
        mixed = (attn @ v).transpose(1, 2).reshape(b, -1, h, w)
        return self.out(mixed)


class GLAM(nn.Module):
    """Global-local attention block with learned softmax fusion of identity, local and global."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        reduced = max(channels // reduction, 1)
        self.local_channel = LocalChannelAttention()
        self.local_spatial = LocalSpatialAttention(channels, reduced)
        self.global_channel = GlobalChannelAttention()
        self.global_spatial = GlobalSpatialAttention(channels, reduced)
        self.fusion_logits = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attended feature map with the shape of `x`."""
        local = x * self.local_channel(x)
        local = local * self.local_spatial(local)
        glob = self.global_channel(x)
        glob = glob + self.global_spatial(glob)
        w = torch.softmax(self.fusion_logits, dim=0)
        return w[0] * x + w[1] * local + w[2] * glob
