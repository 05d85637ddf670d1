"""Experiment designs: named sets of arms run on the same points, cubes and spatial folds.

A design (YAML) lists its arms. A deep arm names a recipe (a role of ``experiment.recipes``, such
as ``soilnet``, or a recipe URL) and the fields it changes (``recipe_set``: dotted recipe fields,
``null`` drops a branch, e.g. ``model.climate: null`` for an image-only ablation), root-config
overrides (``set``: ``finetune.freeze_backbone=true``) and whether it pretrains first. A baseline
arm names a scikit-learn model and its inputs (centre pixels, multi-scale context, or the frozen
features of a pretrained arm). Built-in designs live in ``jobs/configs/experiments/<name>.yaml``;
any other YAML file of the same form is a user design. The root config's ``experiment`` section
(`ExperimentConfig`) holds what does not depend on the design: seeds, the paired test, the recipes
of each role (the scale: the demo's tiny recipes or the papers'), the ``--quick`` overrides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.evaluation.baselines import ClimateFeatures
from soilnet.evaluation.context import DEFAULT_WINDOWS
from soilnet.evaluation.significance import PairedTest

BUILTIN_DESIGNS = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "experiments"
"""Folder of the built-in designs (``soilnet-table``, ``ssl-soilnet-table``, ``dino-table``)."""

ARM_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"

DEFAULT_RECIPES = {
    "soilnet": "jobs/configs/recipes/soilnet.yaml",
    "ssl-soilnet": "jobs/configs/recipes/ssl-soilnet.yaml",
    "dino": "jobs/configs/recipes/dino.yaml",
}

DEFAULT_QUICK = [
    "experiment.seeds=1",
    "finetune.epochs=2",
    "finetune.steps_per_epoch=10",
    "finetune.patience=1",
    "pretrain.epochs=1",
    "pretrain.steps_per_epoch=10",
    "evaluate.baselines.random_forest.n_estimators=100",
    "evaluate.baselines.gradient_boosting.max_iter=100",
]


class ExperimentConfig(StrictModel):
    """Settings of `soilnet experiment` that hold for every design."""

    seeds: int = Field(3, ge=1, description="Repeated runs of every arm (train.seed and baseline seeds 0..N-1).")
    test: PairedTest = Field(
        "ttest",
        description="Significance test: ttest (paired t-test on per-fold RMSE), wilcoxon (signed-rank on "
        "per-fold RMSE) or bootstrap (paired bootstrap over points of the pooled RMSE difference).",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the Holm-adjusted pairwise tests.")
    bootstrap_samples: int = Field(2000, ge=100, description="Resamples of the bootstrap test.")
    context_windows: list[int] = Field(
        default_factory=lambda: list(DEFAULT_WINDOWS),
        min_length=1,
        description="Window sides (odd px) of the fair baselines' per band mean and std.",
    )
    recipes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_RECIPES),
        description="Recipe URL of each role a design names (soilnet, ssl-soilnet, dino): sets the scale.",
    )
    quick: list[str] = Field(
        default_factory=lambda: list(DEFAULT_QUICK),
        description="Root-config overrides applied by --quick (fewer epochs, seeds and trees).",
    )
    run_name: str = Field("experiments", min_length=1, description="Folder under data.runs of every experiment.")


BaselineName = Literal["random_forest", "gradient_boosting", "linear"]


class BaselineArm(StrictModel):
    """A scikit-learn baseline arm and the features it sees."""

    model: BaselineName = Field(..., description="random_forest, gradient_boosting or linear (ridge).")
    inputs: Literal["centre", "context", "ssl_features"] = Field(
        ...,
        description="centre: the point's pixel; context: per band mean and std over experiment.context_windows; "
        "ssl_features: the frozen image features of the pretrained arm `encoders_from`.",
    )
    climate: ClimateFeatures = Field("summary", description="Climate features added (as evaluate.baselines).")
    encoders_from: str | None = Field(
        None, description="inputs=ssl_features: the pretraining arm whose image encoder gives the features."
    )

    @model_validator(mode="after")
    def _ssl_needs_arm(self) -> BaselineArm:
        if (self.inputs == "ssl_features") != (self.encoders_from is not None):
            raise ValueError("baseline.encoders_from is needed with inputs=ssl_features, and only then")
        return self


class ArmConfig(StrictModel):
    """One arm of a design: a deep model (recipe) or a baseline."""

    name: str = Field(..., pattern=ARM_NAME, description="Arm name (row of the table, run and folder name).")
    description: str = Field("", description="What the arm is.")
    recipe: str | None = Field(None, description="Deep arm: a role of experiment.recipes or a recipe URL.")
    recipe_set: dict[str, Any] = Field(
        default_factory=dict, description="Dotted recipe fields and their values; null drops a branch."
    )
    set: list[str] = Field(default_factory=list, description="Root-config overrides of this arm (section.field=value).")
    pretrain: bool = Field(False, description="Self-supervised pretraining of the arm's recipe first.")
    pretrain_from: str | None = Field(
        None,
        description="Fine-tune from the pretrained encoders of this earlier pretraining arm (same seed), e.g. "
        "a frozen or image-only variant of it.",
    )
    baseline: BaselineArm | None = Field(None, description="Baseline arm: the model and its inputs.")

    @model_validator(mode="after")
    def _one_kind(self) -> ArmConfig:
        if (self.recipe is None) == (self.baseline is None):
            raise ValueError(f"arm {self.name!r}: give either recipe (a deep arm) or baseline, not both or neither")
        if self.baseline is not None and (self.recipe_set or self.pretrain or self.pretrain_from):
            raise ValueError(f"arm {self.name!r}: recipe_set, pretrain and pretrain_from apply to deep arms only")
        if self.pretrain and self.pretrain_from:
            raise ValueError(f"arm {self.name!r}: give pretrain or pretrain_from, not both")
        return self

    @property
    def is_deep(self) -> bool:
        """True for a deep arm (a recipe trained per fold)."""
        return self.recipe is not None


class DesignConfig(StrictModel):
    """A named experiment: its arms and the baseline the headline compares the best arm with."""

    name: str = Field(..., pattern=ARM_NAME, description="Design name (MLflow parent run, folder).")
    description: str = Field("", description="What the experiment reproduces.")
    set: list[str] = Field(default_factory=list, description="Root-config overrides of every arm.")
    reference: str = Field("fair_rf", description="The arm the best other arm is tested against in the headline.")
    arms: list[ArmConfig] = Field(..., min_length=2, description="The arms, in table order.")

    @field_validator("arms")
    @classmethod
    def _unique(cls, arms: list[ArmConfig]) -> list[ArmConfig]:
        names = [a.name for a in arms]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"arm names repeat: {repeated}")
        return arms

    @model_validator(mode="after")
    def _references(self) -> DesignConfig:
        arms = {a.name: a for a in self.arms}
        if self.reference not in arms:
            raise ValueError(f"reference {self.reference!r} is not an arm (arms: {list(arms)})")
        names = list(arms)
        for arm in self.arms:
            source = arm.baseline.encoders_from if arm.baseline else None
            if source is not None and not (source in arms and arms[source].pretrain):
                raise ValueError(f"arm {arm.name!r}: encoders_from {source!r} is not a pretraining arm of the design")
            source = arm.pretrain_from
            if source is not None and not (source in arms and arms[source].pretrain):
                raise ValueError(f"arm {arm.name!r}: pretrain_from {source!r} is not a pretraining arm of the design")
            if source is not None and names.index(source) > names.index(arm.name):
                raise ValueError(f"arm {arm.name!r}: pretrain_from {source!r} must come earlier in the arms")
        if not any(a.is_deep for a in self.arms):
            raise ValueError("a design needs at least one deep arm (its windows feed the baselines)")
        return self


def design_location(name: str) -> str:
    """The YAML of a design: a built-in name, else the given path or URL."""
    builtin = BUILTIN_DESIGNS / f"{name}.yaml"
    if builtin.exists():
        return str(builtin)
    if name.endswith((".yaml", ".yml")):
        return name
    known = sorted(p.stem for p in BUILTIN_DESIGNS.glob("*.yaml"))
    raise ValueError(f"unknown experiment {name!r}: use a built-in design {known} or a YAML file")


def load_design(name: str | os.PathLike[str]) -> DesignConfig:
    """Read and validate a design by built-in name or YAML path / URL (errors name the file and field)."""
    where = design_location(os.fspath(name))
    try:
        with storage.open_file(where, "rb") as handle:
            raw = yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise ValueError(f"experiment design {where} not found") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: an experiment design must be a YAML mapping")
    try:
        return DesignConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{where}: invalid experiment design\n{exc}") from exc
