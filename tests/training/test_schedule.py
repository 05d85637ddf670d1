"""Optimiser schedules: warm-up in epochs, linear lr scaling with the batch, the weight-decay cosine, DINO's recipe."""

from __future__ import annotations

import itertools

import pytest
import torch

from soilnet.recipes.optim import OptimConfig
from soilnet.recipes.recipe import load_recipe
from soilnet.training.config import PretrainConfig
from soilnet.training.schedule import make_scheduler, set_weight_decay, weight_decay_at

DINO = OptimConfig(lr=5e-4, lr_batch=256, warmup_epochs=10, weight_decay=0.04, weight_decay_end=0.4)


def test_dino_recipe_carries_the_reference_schedule() -> None:
    optim = load_recipe("jobs/configs/recipes/dino.yaml").pretrain_optim
    assert optim is not None
    assert (optim.lr, optim.lr_batch, optim.warmup_epochs, optim.schedule) == (5e-4, 256, 10, "cosine")
    assert (optim.weight_decay, optim.weight_decay_end) == (0.04, 0.4)
    # a pretraining job that sets no optimiser fields runs the recipe's; fields it sets win
    assert PretrainConfig().optim.over(optim) == optim
    job = PretrainConfig.model_validate({"optim": {"lr": 1e-4}})
    merged = job.optim.over(optim)
    assert merged.lr == 1e-4 and merged.weight_decay_end == 0.4 and merged.warmup_epochs == 10


def test_lr_warms_up_for_ten_epochs_scaled_by_batch_then_cosine_to_zero() -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param], lr=DINO.lr)
    steps_per_epoch, epochs, batch = 5, 40, 512  # 512 / 256: peak lr 1e-3
    scheduler = make_scheduler(optimizer, DINO, epochs * steps_per_epoch, steps_per_epoch, global_batch=batch)
    lrs = []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3 / 50)  # step 1 of 50 warm-up steps
    assert lrs[49] == pytest.approx(1e-3) and max(lrs) == pytest.approx(1e-3)
    assert all(a < b for a, b in itertools.pairwise(lrs[:50]))  # rising through the warm-up
    assert lrs[-1] < 1e-6 and lrs[125] == pytest.approx(0.5e-3, rel=0.02)  # cosine: half-way after warm-up


def test_weight_decay_follows_a_cosine_and_groups_without_decay_keep_none() -> None:
    total = 101
    assert weight_decay_at(DINO, 0, total) == pytest.approx(0.04)
    assert weight_decay_at(DINO, 50, total) == pytest.approx(0.22)
    assert weight_decay_at(DINO, 100, total) == pytest.approx(0.4)
    values = [weight_decay_at(DINO, s, total) for s in range(total)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    decayed, plain = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW(
        [{"params": [decayed]}, {"params": [plain], "weight_decay": 0.0}], weight_decay=DINO.weight_decay
    )
    set_weight_decay(optimizer, DINO, 100, total)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [pytest.approx(0.4), 0.0]
    constant = OptimConfig(weight_decay=0.05)
    set_weight_decay(optimizer, constant, 50, total)  # no schedule: left as built
    assert weight_decay_at(constant, 50, total) == 0.05 and optimizer.param_groups[0]["weight_decay"] == 0.4


def test_warmup_in_steps_and_epochs_together_is_refused() -> None:
    with pytest.raises(ValueError, match="warmup_steps or warmup_epochs, not both"):
        OptimConfig(warmup_steps=10, warmup_epochs=2)
