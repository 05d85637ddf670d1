"""The optimiser settings of a training job, and the reference ones a recipe may carry (``pretrain_optim``).

AdamW with a learning-rate schedule (`soilnet.training.schedule` turns these into per-step values): linear
warm-up in steps or epochs, then constant, cosine to 0 or step decay; optionally the learning rate per
``lr_batch`` samples, scaled with the global batch, and a weight decay following a cosine to
``weight_decay_end``. A job's own fields, where set, win over a recipe's (`OptimConfig.over`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from soilnet.configbase import StrictModel


class OptimConfig(StrictModel):
    """AdamW with a learning-rate schedule and an optional weight-decay schedule."""

    lr: float = Field(1e-3, gt=0, description="Learning rate (of the head and fusion layers when fine-tuning).")
    encoder_lr: float | None = Field(
        None, gt=0, description="Fine-tuning: learning rate of the image and climate encoders; None: same as lr."
    )
    lr_batch: int | None = Field(
        None,
        ge=1,
        description="If set, lr is per this many samples and scales linearly with the global batch (batch_size x "
        "workers x grad_accum_steps): lr x global / lr_batch (DINO: 256). None: lr as given.",
    )
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay (at the first step, with a schedule).")
    weight_decay_end: float | None = Field(
        None,
        ge=0,
        description="If set, the weight decay follows a cosine from weight_decay to this value over all steps "
        "(DINO: 0.04 -> 0.4); parameter groups without decay (biases, norms) keep 0. None: constant.",
    )
    schedule: Literal["constant", "cosine", "step"] = Field(
        "cosine", description="constant; cosine to 0 over all steps; step: x gamma every step_epochs (reference)."
    )
    step_epochs: int = Field(10, ge=1, description="schedule=step: epochs between decays (reference: 10).")
    gamma: float = Field(0.2, gt=0, le=1, description="schedule=step: decay factor (reference: 0.2).")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up optimiser steps before the schedule.")
    warmup_epochs: int = Field(
        0, ge=0, description="Linear warm-up in epochs (DINO: 10); give it or warmup_steps, not both."
    )
    grad_clip: float | None = Field(1.0, gt=0, description="Gradient norm clipping; None: off.")

    @model_validator(mode="after")
    def _one_warmup(self) -> OptimConfig:
        if self.warmup_steps and self.warmup_epochs:
            raise ValueError("optim: give warmup_steps or warmup_epochs, not both")
        return self

    def over(self, base: OptimConfig | None) -> OptimConfig:
        """These settings where they were set explicitly, ``base`` (e.g. a recipe's reference) elsewhere."""
        if base is None:
            return self
        return OptimConfig.model_validate({**base.model_dump(), **self.model_dump(exclude_unset=True)})
