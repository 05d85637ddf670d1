"""Per-step schedules of the optimiser settings (`soilnet.recipes.optim.OptimConfig`): learning rate and weight decay.

A learning rate that warms up linearly (steps or epochs), then stays constant, follows a cosine to 0 or
decays in steps, optionally scaled linearly with the global batch (DINO: ``lr x batch / 256``); and a
weight decay that can follow a cosine from ``weight_decay`` to ``weight_decay_end`` (DINO: 0.04 -> 0.4).
"""

from __future__ import annotations

import math

import torch

from soilnet.recipes.optim import OptimConfig


def lr_factor(cfg: OptimConfig, step: int, total_steps: int, steps_per_epoch: int, global_batch: int) -> float:
    """Multiplier of the configured learning rate at optimiser step ``step`` (0-based)."""
    scale = global_batch / cfg.lr_batch if cfg.lr_batch else 1.0
    warmup = cfg.warmup_steps or cfg.warmup_epochs * steps_per_epoch
    if step < warmup:
        return scale * (step + 1) / warmup
    if cfg.schedule == "cosine":
        span = max(1, total_steps - warmup)
        return scale * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / span)))
    if cfg.schedule == "step":
        return scale * cfg.gamma ** (step // (cfg.step_epochs * steps_per_epoch))
    return scale


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int, steps_per_epoch: int, global_batch: int = 1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-optimiser-step LambdaLR of `lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, total_steps, steps_per_epoch, global_batch)
    )


def weight_decay_at(cfg: OptimConfig, step: int, total_steps: int) -> float:
    """The weight decay at optimiser step ``step``: constant, or the cosine to ``weight_decay_end``."""
    if cfg.weight_decay_end is None:
        return cfg.weight_decay
    progress = min(1.0, step / max(1, total_steps - 1))
    return cfg.weight_decay_end + 0.5 * (cfg.weight_decay - cfg.weight_decay_end) * (1 + math.cos(math.pi * progress))


def set_weight_decay(optimizer: torch.optim.Optimizer, cfg: OptimConfig, step: int, total_steps: int) -> None:
    """Set the scheduled weight decay on every parameter group that decays (groups with 0 keep 0)."""
    if cfg.weight_decay_end is None:
        return
    value = weight_decay_at(cfg, step, total_steps)
    for group in optimizer.param_groups:
        if group.get("weight_decay", 0.0) > 0:
            group["weight_decay"] = value
