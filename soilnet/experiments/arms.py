"""What an arm runs with: its root config, its recipe (a role's recipe with the arm's changes), its inputs."""

from __future__ import annotations

import hashlib
import json

import yaml

from soilnet import storage
from soilnet.config import SoilnetConfig, set_dotted, with_overrides
from soilnet.evaluation.design import ArmConfig, BaselineArm, DesignConfig
from soilnet.recipes.recipe import RecipeConfig, load_recipe


def arm_config(cfg: SoilnetConfig, design: DesignConfig, arm: ArmConfig, seed: int, runs: str) -> SoilnetConfig:
    """The root config of an arm-seed: the design's and the arm's overrides, the seed, the experiment's runs."""
    overrides = [*design.set, *arm.set, f"train.seed={seed}", f"data.runs={runs}", "finetune.only_folds=null"]
    return with_overrides(cfg, overrides, f"experiment {design.name}, arm {arm.name}")


def arm_recipe(cfg: SoilnetConfig, arm: ArmConfig) -> RecipeConfig:
    """The recipe of a deep arm: its role's recipe (``experiment.recipes``) or URL, with ``recipe_set`` applied."""
    if arm.recipe is None:
        raise ValueError(f"arm {arm.name!r} is a baseline: it has no recipe")
    url = cfg.experiment.recipes.get(arm.recipe, arm.recipe)
    base = load_recipe(url)
    tree = set_dotted(base.model_dump(mode="json"), arm.recipe_set)
    tree["name"] = f"{base.name}:{arm.name}"
    try:
        return RecipeConfig.model_validate(tree)
    except ValueError as exc:
        raise ValueError(f"arm {arm.name!r}: recipe {url} with recipe_set {arm.recipe_set} is invalid: {exc}") from exc


def write_recipe(recipe: RecipeConfig, url: str) -> str:
    """Save a recipe as YAML at `url` (what the training jobs read); returns `url`."""
    storage.replace_text(url, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    return url


def pretrain_key(recipe: RecipeConfig, cfg: SoilnetConfig) -> str:
    """A short digest of what a pretraining depends on (recipe, pretrain section, train section and seed)."""
    facts = {"recipe": recipe.model_dump(mode="json"), "pretrain": cfg.pretrain.model_dump(mode="json")}
    facts["train"] = cfg.train.model_dump(mode="json")
    facts["pretrain"].pop("recipe", None)
    facts["recipe"].pop("name", None)
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def arm_digest(cfg: SoilnetConfig, arm: ArmConfig, recipe: RecipeConfig) -> str:
    """A digest of what an arm-seed's result depends on; a finished arm-seed is reused only with the same one.

    A deep arm: the data, train, pretrain and finetune sections, the arm and its recipe. A baseline arm:
    the data, the points and folds (finetune target, folds, stream), the baseline settings, the context
    windows, the arm, `recipe` (the one whose windows it reads) and, on frozen features, the pretraining.
    """
    facts: dict = {"arm": arm.model_dump(mode="json"), "recipe": recipe.model_dump(mode="json")}
    facts["data"] = cfg.data.model_dump(mode="json")
    if arm.is_deep:
        facts.update(cfg.model_dump(mode="json", include={"train", "pretrain", "finetune"}))
    else:
        facts["finetune"] = cfg.finetune.model_dump(mode="json", include={"target", "folds", "stream"})
        model = arm.baseline.model if arm.baseline is not None else None
        facts["baselines"] = cfg.evaluate.baselines.model_dump(mode="json", include={model})
        facts["context_windows"] = cfg.experiment.context_windows
        if arm.baseline is not None and arm.baseline.inputs == "ssl_features":
            facts.update(cfg.model_dump(mode="json", include={"train", "pretrain"}))
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def deep_inputs(recipe: RecipeConfig) -> str:
    """What a deep arm sees, in words: its window and its climate series."""
    parts = []
    data, model = recipe.data, recipe.model
    if model.image is not None:
        parts.append(f"{data.patch_px} px window ({data.n_bands} bands)")
    if model.climate is not None:
        parts.append(f"{data.n_months} months climate")
    return " + ".join(parts)


def baseline_inputs(arm: BaselineArm, windows: list[int], n_bands: int, n_vars: int) -> str:
    """What a baseline arm sees, in words: its pixel features and its climate features."""
    if arm.inputs == "centre":
        pixels = f"centre pixel ({n_bands} bands)"
    elif arm.inputs == "context":
        pixels = f"mean+std over {'/'.join(map(str, windows))} px ({n_bands} bands)"
    else:
        pixels = f"frozen {arm.encoders_from} image features"
    climate = {
        "none": "",
        "summary": f"climate summary ({n_vars} vars x mean/std/min/max)",
        "series": "climate series (every month)",
        "summary+series": "climate summary + series",
    }[arm.climate]
    return " + ".join(p for p in (pixels, climate) if p)
