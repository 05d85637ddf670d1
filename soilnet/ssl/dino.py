"""DINO self-distillation (Caron et al. 2021) as Tresson et al. used it on ViT-B/16 tiles.

The student sees global and local crops, the teacher (an EMA of the student, momentum on a cosine
schedule towards 1) sees the global crops only; the teacher's outputs are centred (running mean)
and sharpened (low temperature), and the student matches them by cross-entropy across views.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from soilnet.models.encoder import ImageEncoder
from soilnet.ssl.augment import random_resized_crops
from soilnet.ssl.config import DINOConfig
from soilnet.ssl.losses import LossOutput, embedding_std
from soilnet.ssl.objective import SSLObjective


def cosine_momentum(step: int, total_steps: int, start: float, end: float = 1.0) -> float:
    """Teacher momentum rising from `start` at step 0 to `end` at `total_steps` (cosine)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * progress) + 1) / 2


class DINOHead(nn.Module):
    """MLP -> L2-normalised bottleneck -> prototypes with unit-norm weights (no bias)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, bottleneck_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prototype scores (N, out_dim) in [-1, 1]."""
        z = F.normalize(self.mlp(x), dim=-1)
        return F.linear(z, F.normalize(self.prototypes, dim=-1))


class DINOLoss(nn.Module):
    """Cross-entropy between centred, sharpened teacher and student distributions of other views."""

    def __init__(
        self,
        out_dim: int,
        teacher_temperature: float = 0.04,
        student_temperature: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.teacher_temperature = teacher_temperature
        self.student_temperature = student_temperature
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(
        self, student_out: torch.Tensor, teacher_out: torch.Tensor, n_crops: int, n_global: int
    ) -> torch.Tensor:
        """Loss for student outputs of `n_crops` views and teacher outputs of `n_global` views.

        Rows are grouped by view (view 0 of every image, then view 1, ...); the first `n_global`
        student views are the global crops the teacher saw. Updates the centre.
        """
        student = F.log_softmax(student_out / self.student_temperature, dim=-1).chunk(n_crops)
        teacher = F.softmax((teacher_out.detach() - self.center) / self.teacher_temperature, dim=-1).chunk(n_global)
        terms = [(-t * student[v]).sum(dim=-1).mean() for i, t in enumerate(teacher) for v in range(n_crops) if v != i]
        self.update_center(teacher_out.detach())
        return torch.stack(terms).mean()

    @torch.no_grad()
    def update_center(self, teacher_out: torch.Tensor) -> None:
        """EMA of the teacher's mean output, averaged over all workers when distributed."""
        total = teacher_out.sum(dim=0, keepdim=True)
        count = torch.tensor(float(teacher_out.shape[0]), device=teacher_out.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(total)
            dist.all_reduce(count)
        self.center.mul_(self.center_momentum).add_(total / count * (1 - self.center_momentum))


class DINOObjective(SSLObjective):
    """Student (encoder + DINO head) and its EMA teacher on multi-crop views.

    `image_encoder` is the teacher backbone, which DINO keeps for downstream use;
    `student_encoder` is the one trained by gradients.
    """

    def __init__(self, image_encoder: ImageEncoder, cfg: DINOConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.student_encoder = image_encoder
        self.student_head = DINOHead(image_encoder.out_dim, cfg.out_dim, cfg.hidden_dim, cfg.bottleneck_dim)
        self.image_encoder = copy.deepcopy(image_encoder)
        self.teacher_head = copy.deepcopy(self.student_head)
        for p in (*self.image_encoder.parameters(), *self.teacher_head.parameters()):
            p.requires_grad_(False)
        self.loss_fn = DINOLoss(cfg.out_dim, cfg.teacher_temperature, cfg.student_temperature, cfg.center_momentum)

    def crops(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Global crops (n_global * B, C, g, g) and local crops (n_local * B, C, l, l) or None."""
        cfg = self.cfg
        global_crops = torch.cat(
            [
                random_resized_crops(image, cfg.global_crop_size, cfg.global_crop_scale)
                for _ in range(cfg.n_global_crops)
            ]
        )
        if cfg.n_local_crops == 0:
            return global_crops, None
        local_crops = torch.cat(
            [random_resized_crops(image, cfg.local_crop_size, cfg.local_crop_scale) for _ in range(cfg.n_local_crops)]
        )
        return global_crops, local_crops

    def forward(
        self,
        image: torch.Tensor,
        climate: torch.Tensor | None = None,
        missing: torch.Tensor | None = None,
    ) -> LossOutput:
        """DINO loss over multi-crop views of the batch (climate is ignored)."""
        global_crops, local_crops = self.crops(image)
        student_features = self.student_encoder(global_crops)
        student_out = [self.student_head(student_features)]
        if local_crops is not None:
            student_out.append(self.student_head(self.student_encoder(local_crops)))
        with torch.no_grad():
            teacher_features = self.image_encoder(global_crops)
            teacher_out = self.teacher_head(teacher_features)
        n_crops = self.cfg.n_global_crops + self.cfg.n_local_crops
        loss = self.loss_fn(torch.cat(student_out), teacher_out, n_crops, self.cfg.n_global_crops)
        return LossOutput(
            loss,
            embedding_std(teacher_features),
            {"student_embedding_std": embedding_std(student_features)},
        )

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher = momentum * teacher + (1 - momentum) * student, parameter by parameter."""
        pairs = (
            (self.student_encoder, self.image_encoder),
            (self.student_head, self.teacher_head),
        )
        for student, teacher in pairs:
            for ps, pt in zip(student.parameters(), teacher.parameters(), strict=True):
                pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)

    def after_step(self, step: int, total_steps: int) -> None:
        """EMA update of the teacher with the cosine momentum schedule."""
        cfg = self.cfg
        self.update_teacher(cosine_momentum(step, total_steps, cfg.momentum_start, cfg.momentum_end))
