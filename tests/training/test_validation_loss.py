"""Validation on rows that come read-only from Ray's object store: no torch warning, the same loss as on copies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from soilnet.data.normalisation import NormStats
from soilnet.recipes.recipe import load_recipe
from soilnet.training.loop import validation_loss
from soilnet.training.tasks import RegressionTask


def test_read_only_validation_rows_give_no_warning(tiny_recipe: str) -> None:
    recipe = load_recipe(tiny_recipe)
    task = RegressionTask(recipe, "mse", 1.0, None, False)
    torch.manual_seed(0)
    module = task.build()
    rng = np.random.default_rng(0)
    val = {
        "image": rng.normal(size=(10, 14, 16, 16)).astype(np.float32),
        "climate": rng.normal(size=(10, 6, 14)).astype(np.float32),
        "target": rng.normal(20.0, 5.0, 10).astype(np.float32),
    }
    for array in val.values():
        array.setflags(write=False)  # as ray.get returns them
    stats = NormStats(
        image_method="standard", bands=[f"b{i}" for i in range(14)], image_center=[0.0] * 14, image_scale=[1.0] * 14,
        variables=[f"v{i}" for i in range(14)], climate_mean=[0.0] * 14, climate_std=[1.0] * 14,
        target_mean=20.0, target_std=5.0, n_rows=10,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = validation_loss(task, module, val, 4, stats, torch.device("cpu"))
    copies = {k: v.copy() for k, v in val.items()}
    again = validation_loss(task, module, copies, 4, stats, torch.device("cpu"))
    assert np.isfinite(loss) and loss == pytest.approx(again)
