"""How fast one GPU eats samples, per recipe, and how many reader cores keep it fed.

Training FLOPs per sample are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one
forward and backward pass of a small random batch on the CPU, divided by the batch: fine-tuning
(the model and a squared-error loss on its first output) for every recipe, and pretraining (the
SSL objective's loss) for recipes with an ``ssl`` section. One H100 SXM's dense bf16 peak is
989 TFLOP/s; at 40 % of it (a good training utilisation) it consumes
``0.4 * 989e12 / flops_per_sample`` samples per second, which the data path must deliver.

Reader cores per GPU = that rate / a reader path's samples per second per core. The per-core
rates in `READER_RATES` are the figures `benchmarks/streaming.py --quick` measured (process CPU
time, continental sample set, 14 x 64 x 64 int16 windows); for a recipe with other windows they
are scaled by the window's size (decoding and normalising cost goes with the bytes). The benchmark
prints the same table from its own fresh figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.flop_counter import FlopCounterMode

from soilnet.recipes.recipe import RecipeConfig

H100_BF16_FLOPS = 989e12
UTILISATION = 0.4
#: Values of the windows the reader rates were measured on (14 bands x 64 x 64 px).
READER_WINDOW = 14 * 64 * 64
#: Samples per core-second of each access pattern, as measured by benchmarks/streaming.py --quick.
READER_RATES: dict[str, float] = {
    "labelled, epoch 1 (point store)": 2512.0,
    "labelled, epoch 2+ (cache)": 10709.0,
    "SSL windows (64 per shard)": 2303.0,
}

Stage = Literal["finetune", "pretrain"]


@dataclass(frozen=True)
class Feed:
    """One recipe stage's training cost per sample and what it takes to feed one H100."""

    recipe: str
    stage: Stage
    flops_per_sample: float
    window_values: int = READER_WINDOW

    @property
    def samples_per_s(self) -> float:
        """Samples per second one H100 consumes at `UTILISATION` of its dense bf16 peak."""
        return UTILISATION * H100_BF16_FLOPS / self.flops_per_sample

    def cores(self, per_core: float) -> float:
        """Reader cores one H100 needs for a reader path of ``per_core`` samples/s per core on 14 x 64 x 64
        windows (scaled to this recipe's window size)."""
        return self.samples_per_s / (per_core * READER_WINDOW / self.window_values)


def training_flops(recipe: RecipeConfig, stage: Stage, batch: int = 2) -> float:
    """FLOPs of one training step (forward and backward) per sample of ``recipe``'s ``stage``."""
    from soilnet.ssl.factory import build_objective

    if stage == "pretrain" and recipe.ssl is None:
        raise ValueError(f"recipe {recipe.name!r} has no ssl section: nothing to pretrain")
    d = recipe.data
    model = recipe.model
    if model.image is not None and model.image.pretrained is not None:  # shapes only: no weights to read
        model = model.model_copy(update={"image": model.image.model_copy(update={"pretrained": None})})
        recipe = recipe.model_copy(update={"model": model})
    with torch.device("meta"):  # FLOPs depend on shapes only: nothing is computed
        image = torch.rand(batch, d.n_bands, d.patch_px, d.patch_px)
        climate = torch.randn(batch, d.n_months, d.n_climate_vars)
        if stage == "pretrain":
            module: torch.nn.Module = build_objective(
                recipe.ssl, model, d.n_bands, d.n_climate_vars, d.n_months, d.patch_px
            )
        else:
            module = recipe.build_model()
    module.train()
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        if stage == "pretrain":
            where = {"location": torch.zeros(batch, 2)} if getattr(module, "uses_location", False) else {}
            loss = module(image, climate, **where).loss
        else:
            out = next(iter(module(image, climate).values()))
            loss = (out.float() ** 2).mean()
        loss.backward()
    return counter.get_total_flops() / batch


def recipe_feeds(recipe: RecipeConfig) -> list[Feed]:
    """The fine-tuning feed of a recipe, and its pretraining feed when it has an SSL section."""
    stages: list[Stage] = ["finetune"] + (["pretrain"] if recipe.ssl is not None else [])
    d = recipe.data
    window = d.n_bands * d.patch_px * d.patch_px
    return [Feed(recipe.name, stage, training_flops(recipe, stage), window) for stage in stages]
