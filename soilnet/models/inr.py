"""A LIIF-style implicit neural representation (INR) over an image encoder's stages (MISO).

For a query point anywhere in a window, each stage's feature map (B, C, H, W) gives the features of
the point's 4 nearest cells; each is concatenated with the point's offset from that cell's centre
(in cells), passed through the stage's MLP, and the 4 results are blended with LIIF's bilinear area
weights (the area of the rectangle spanned by the point and the diagonally opposite cell, over the
total). The stage embeddings are summed and layer-normalised: one embedding per query point, which
a head turns into predictions. The model thus predicts at continuous locations: any list of points,
any output resolution (also finer than the input pixels).

Query coordinates are (x, y) in [-1, 1] over the window (or tile) the features were computed from,
x to the right, y down: -1 is the window's left / top edge, +1 its right / bottom edge (the
``grid_sample`` convention with ``align_corners=False``).
"""

from __future__ import annotations

import torch
from torch import nn

#: LIIF's small shift that keeps a query on an exact cell boundary on one side.
EPS = 1e-6


def pixel_queries(size: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Query coordinates (N, 2) of fractional pixel positions (row, col) in a ``size`` px window.

    Pixel (r, c)'s centre is (r + 0.5, c + 0.5); 0 and `size` are the window's edges.
    """
    return torch.stack([cols / size * 2 - 1, rows / size * 2 - 1], dim=-1).float()


def centre_query(size: int) -> torch.Tensor:
    """The query (2,) of the centre of pixel ``size // 2``: where a training window's point lies."""
    centre = torch.tensor(size // 2 + 0.5)
    return pixel_queries(size, centre, centre)


def shift_windows(image: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Windows (B, C, P, P) moved by whole pixels: pixel (r, c) of window i goes to (r + dy_i, c + dx_i).

    `shifts` is (B, 2) integer (dy, dx); what moves out is dropped and zeros fill what moves in.
    """
    _, _, h, w = image.shape
    pad = int(shifts.abs().max()) if shifts.numel() else 0
    padded = torch.nn.functional.pad(image, (pad, pad, pad, pad))
    rows = [int(pad - dy) for dy in shifts[:, 0]]
    cols = [int(pad - dx) for dx in shifts[:, 1]]
    return torch.stack([padded[i, :, r : r + h, c : c + w] for i, (r, c) in enumerate(zip(rows, cols, strict=True))])


def nearest_cells(
    features: torch.Tensor, queries: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The 4 nearest cells of each query: (features (B, Q, C), offset in cells (B, Q, 2), weight (B, Q)).

    Weights are LIIF's bilinear areas and sum to 1 over the 4 cells.
    """
    _, c, h, w = features.shape
    size = torch.tensor([w, h], dtype=queries.dtype, device=queries.device)
    flat = features.flatten(2).transpose(1, 2)  # (B, HW, C)
    picks = []
    for vy in (-1, 1):
        for vx in (-1, 1):
            shift = torch.tensor([vx, vy], dtype=queries.dtype, device=queries.device) / size + EPS
            moved = (queries + shift).clamp(-1 + EPS, 1 - EPS)
            cell = ((moved + 1) / 2 * size).floor().clamp(max=size - 1)  # (B, Q, 2) col, row
            index = (cell[..., 1] * w + cell[..., 0]).long()
            gathered = torch.gather(flat, 1, index.unsqueeze(-1).expand(-1, -1, c))
            centre = (cell + 0.5) / size * 2 - 1
            offset = (queries - centre) * size / 2  # in cells
            picks.append((gathered, offset, offset.prod(dim=-1).abs() + 1e-9))
    total = sum(area for _, _, area in picks)
    # LIIF: each cell is weighted by the area opposite it (indices 0<->3, 1<->2).
    return [(f, off, picks[3 - i][2] / total) for i, (f, off, _) in enumerate(picks)]


class StageQuery(nn.Module):
    """One stage's MLP over [cell feature, offset], blended over the 4 nearest cells."""

    def __init__(self, channels: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels + 2, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, features: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, Q, out_dim) of queries (B, Q, 2) over a feature map (B, C, H, W)."""
        return sum(
            self.mlp(torch.cat([f, offset.to(f.dtype)], dim=-1)) * weight.unsqueeze(-1).to(f.dtype)
            for f, offset, weight in nearest_cells(features, queries)
        )


class LIIF(nn.Module):
    """Per-stage LIIF queries, summed over stages and layer-normalised: (B, Q, out_dim)."""

    def __init__(self, stage_channels: list[int], hidden: int, out_dim: int) -> None:
        super().__init__()
        if not stage_channels:
            raise ValueError("the INR needs at least one encoder stage")
        self.stages = nn.ModuleList(StageQuery(c, hidden, out_dim) for c in stage_channels)
        self.norm = nn.LayerNorm(out_dim)
        self.out_dim = out_dim

    def forward(self, stages: list[torch.Tensor], queries: torch.Tensor) -> torch.Tensor:
        """One embedding per query (B, Q, out_dim) from stage feature maps over the same extent."""
        if len(stages) != len(self.stages):
            raise ValueError(f"the INR was built for {len(self.stages)} stages, got {len(stages)} feature maps")
        if queries.ndim != 3 or queries.shape[-1] != 2 or queries.shape[0] != stages[0].shape[0]:
            raise ValueError(f"queries must be (B={stages[0].shape[0]}, Q, 2), got {tuple(queries.shape)}")
        return self.norm(sum(stage(f, queries) for stage, f in zip(self.stages, stages, strict=True)))
