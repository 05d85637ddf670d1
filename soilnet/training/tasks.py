"""What a training worker optimises: supervised regression or a self-supervised objective.

A task (`Task`) builds its module, splits its parameters into groups with their learning rates,
computes the loss of one batch (padding rows, ``valid = 0``, weigh nothing), names the metric that
picks the best epoch (``score``) and runs its hook after each optimiser step (EMA teachers).
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from soilnet import storage
from soilnet.models.checkpoint import load_weights
from soilnet.models.fusion import SoilNetModel
from soilnet.recipes.recipe import RecipeConfig
from soilnet.ssl.factory import build_objective
from soilnet.ssl.geo_contrastive import geo_contrastive_loss
from soilnet.ssl.objective import SSLObjective
from soilnet.training.config import OptimConfig

log = logging.getLogger(__name__)

IMAGE_ENCODER_FILE = "image_encoder.safetensors"
CLIMATE_ENCODER_FILE = "climate_encoder.safetensors"


class Task(Protocol):
    """What the worker loop (`soilnet.training.loop`) asks of a task."""

    #: The epoch metric that picks the best epochs and drives early stopping (lower is better).
    score: str

    def build(self) -> nn.Module:
        """A freshly initialised module (on the CPU)."""

    def param_groups(self, module: nn.Module, optim: OptimConfig) -> list[dict]:
        """The optimiser's parameter groups of `module`, with their learning rates."""

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one batch and the monitors to log with it."""

    def after_step(self, module: nn.Module, step: int, total_steps: int) -> None:
        """Runs after each optimiser step of `module` (the unwrapped module)."""


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of `values` (B,) weighted by `weights` (B,); 0 when every weight is 0."""
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def pretrained_encoders_url(url: str) -> str:
    """The absolute URL of a pretraining output folder (workers run in another directory); checks it holds encoders."""
    absolute = storage.resolve(url).url
    if not storage.exists(storage.join(absolute, IMAGE_ENCODER_FILE)):
        raise FileNotFoundError(f"{url}: no {IMAGE_ENCODER_FILE}; is it the output of soilnet pretrain?")
    return absolute


def load_pretrained_encoders(model: SoilNetModel, url: str) -> None:
    """Load encoders exported by pretraining (``image_encoder.safetensors``, ``climate_encoder...``)."""
    image = storage.join(pretrained_encoders_url(url), IMAGE_ENCODER_FILE)
    if model.image_encoder is None:
        raise ValueError("finetune.pretrained is set but the recipe's model has no image branch")
    load_weights(model.image_encoder, image)
    climate = storage.join(url, CLIMATE_ENCODER_FILE)
    if model.climate_encoder is not None and storage.exists(climate):
        load_weights(model.climate_encoder, climate)


def unwrapped(module: nn.Module) -> nn.Module:
    """The module inside a distributed data parallel wrapper (or `module` itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def sample_xy(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each sample's projected x/y (B, 2), float64, on the device of its image."""
    return torch.stack([batch["x"], batch["y"]], dim=-1).to(batch["image"].device, torch.float64)


class RegressionTask:
    """Fine-tuning: standardised target, MSE / Huber / L1 (or Gaussian NLL for a variance head)."""

    score = "val_loss"

    def __init__(
        self,
        recipe: RecipeConfig,
        loss: Literal["mse", "huber", "l1"],
        huber_delta: float,
        pretrained: str | None,
        freeze_backbone: bool,
    ) -> None:
        if recipe.model.head.n_targets != self.head_columns():
            raise ValueError(
                f"recipe {recipe.name}: model.head.n_targets is {recipe.model.head.n_targets}, "
                f"the targets need {self.head_columns()} head columns"
            )
        self.recipe, self.loss_name, self.huber_delta = recipe, loss, huber_delta
        self.pretrained = pretrained_encoders_url(pretrained) if pretrained else None
        self.freeze_backbone = freeze_backbone
        ssl = recipe.ssl
        #: MISO's contrastive terms, trained with the supervised loss (unlabelled random queries enter them only).
        self.geo = ssl.geo if ssl is not None and ssl.objective == "geo_contrastive" and ssl.geo.in_finetune else None

    def head_columns(self) -> int:
        """The head width this task trains: one column for one target."""
        return 1

    def build(self) -> SoilNetModel:
        """The recipe's model, with pretrained encoders loaded and the backbone frozen if asked."""
        model = self.recipe.build_model()
        if self.pretrained:
            load_pretrained_encoders(model, self.pretrained)
        if self.freeze_backbone:
            model.image_encoder.freeze()
        if self.geo is None and getattr(model, "location_encoder", None) is not None:
            model.location_encoder.requires_grad_(False)  # unused: no gradient to wait for
        return model

    def param_groups(self, module: nn.Module, optim: OptimConfig) -> list[dict]:
        """Encoders at ``encoder_lr`` (default ``lr``), projections and head at ``lr``; frozen ones left out."""
        encoder_ids = set()
        for part in (module.image_encoder, module.climate_encoder):
            if part is not None:
                encoder_ids |= {id(p) for p in part.parameters()}
        trainable = [p for p in module.parameters() if p.requires_grad]
        encoders = [p for p in trainable if id(p) in encoder_ids]
        rest = [p for p in trainable if id(p) not in encoder_ids]
        groups = [{"params": rest, "lr": optim.lr, "name": "head"}]
        if encoders:
            groups.append({"params": encoders, "lr": optim.encoder_lr or optim.lr, "name": "encoders"})
        return groups

    def sample_losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Loss of each sample (B,) of a batch (the validation loss is their mean)."""
        return self.per_sample(out, batch["target"])

    def supervised_loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's supervised loss: the sample losses weighted by ``valid``."""
        return weighted_mean(self.sample_losses(out, batch), batch["valid"])

    def per_sample(self, out: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """Loss of each sample (B,) on standardised targets."""
        pred = out["prediction"][:, 0].float()
        if "log_var" in out:
            log_var = out["log_var"][:, 0].float()
            return 0.5 * (log_var + (target - pred).square() * torch.exp(-log_var))
        if self.loss_name == "huber":
            return F.huber_loss(pred, target, reduction="none", delta=self.huber_delta)
        if self.loss_name == "l1":
            return (pred - target).abs()
        return (pred - target).square()

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted loss of a normalised batch whose ``target`` is standardised (plus the geo-contrastive terms)."""
        if self.geo is None:
            out = module(batch["image"], batch["climate"])
        else:
            out = module(batch["image"], batch["climate"], None, sample_xy(batch), self.geo.n_queries)
        loss = self.supervised_loss(out, batch)
        if self.geo is None:
            return loss, {}
        terms = geo_contrastive_loss(out, self.geo, batch["valid"])
        return loss + terms.loss, {k: v for k, v in terms.metrics().items() if k != "loss"}

    def after_step(self, module: nn.Module, step: int, total_steps: int) -> None:
        """Nothing: a supervised model has no per-step state besides its optimiser."""


class SSLTask:
    """Self-supervised pretraining with the recipe's SSL objective; logs its collapse monitor."""

    score = "train_loss"

    def __init__(self, recipe: RecipeConfig) -> None:
        if recipe.ssl is None:
            raise ValueError(f"recipe {recipe.name} has no ssl section: nothing to pretrain")
        self.recipe = recipe

    def build(self) -> SSLObjective:
        """The SSL objective around freshly initialised encoders."""
        d = self.recipe.data
        return build_objective(self.recipe.ssl, self.recipe.model, d.n_bands, d.n_climate_vars, d.n_months, d.patch_px)

    def param_groups(self, module: nn.Module, optim: OptimConfig) -> list[dict]:
        """One group of every trainable parameter at ``lr``."""
        return [{"params": [p for p in module.parameters() if p.requires_grad], "lr": optim.lr, "name": "all"}]

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The objective's loss and monitors (padding rows are real windows repeated: kept)."""
        if getattr(unwrapped(module), "uses_location", False):
            out = module(batch["image"], batch["climate"], location=sample_xy(batch))
        else:
            out = module(batch["image"], batch["climate"])
        monitors = out.metrics()
        monitors.pop("loss")
        return out.loss, monitors

    def after_step(self, module: SSLObjective, step: int, total_steps: int) -> None:
        """The objective's step hook (DINO's EMA teacher and its momentum schedule)."""
        module.after_step(step, total_steps)
