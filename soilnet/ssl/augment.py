"""Image augmentations as batched torch functions, run on the training device inside the step.

Each sample of the batch draws its own transform. `flip_rot90` moves pixels exactly;
`random_resized_crops` resamples (bilinear) for multi-crop and free rotations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """`n` uniform draws in [low, high) on the device of `like`."""
    u = torch.rand(n, generator=gen, device=gen.device if gen is not None else like.device)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def flip_rot90(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal flip and rotation by 0/90/180/270 degrees per sample (the dihedral group)."""
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"flip_rot90 needs square images (B, C, P, P), got {tuple(images.shape)}")
    device = generator.device if generator is not None else images.device
    n = images.shape[0]
    flip = (torch.rand(n, generator=generator, device=device) < 0.5).to(images.device)
    turns = torch.randint(0, 4, (n,), generator=generator, device=device).to(images.device)
    out = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    rotated = torch.stack([torch.rot90(out, k, dims=(-2, -1)) for k in range(4)])
    return rotated[turns, torch.arange(n, device=images.device)]


def random_resized_crops(
    images: torch.Tensor,
    size: int,
    scale: tuple[float, float] = (0.4, 1.0),
    max_rotation_degrees: float = 0.0,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Square crops covering a random `scale` fraction of each image's area, resized to `size`.

    Each crop also gets a random rotation in [-max, max] degrees about its centre (edges filled by
    reflection) and, with `flip`, a random horizontal flip.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, bands, height, width), got {tuple(images.shape)}")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
    n = images.shape[0]
    side = _uniform(n, scale[0], scale[1], images, generator).sqrt()
    cx = _uniform(n, -1.0, 1.0, images, generator) * (1 - side)
    cy = _uniform(n, -1.0, 1.0, images, generator) * (1 - side)
    angle = _uniform(n, -1.0, 1.0, images, generator) * math.radians(max_rotation_degrees)
    mirror = torch.ones_like(side)
    if flip:
        mirror = torch.where(_uniform(n, 0.0, 1.0, images, generator) < 0.5, -mirror, mirror)
    cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, cx], dim=-1),
            torch.stack([sin * mirror, cos, cy], dim=-1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
