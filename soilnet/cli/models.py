"""``soilnet models describe``: validate a recipe and show its shapes and parameter counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from soilnet.cli.common import results, run_guarded

if TYPE_CHECKING:
    from soilnet.recipes.recipe import RecipeConfig

app = typer.Typer(
    name="models",
    help="Model recipes (soilnet, ssl-soilnet, dino and ablations): validate and inspect them.",
    no_args_is_help=True,
)


@app.callback()
def models() -> None:
    """Model recipes (soilnet, ssl-soilnet, dino and ablations): validate and inspect them."""


def without_pretrained(recipe: RecipeConfig) -> RecipeConfig:
    """The recipe with no pretrained weights to read (counts do not depend on them)."""
    image = recipe.model.image
    if image is None or image.pretrained is None:
        return recipe
    model = recipe.model.model_copy(update={"image": image.model_copy(update={"pretrained": None})})
    return recipe.model_copy(update={"model": model})


def parameter_table(recipe: RecipeConfig) -> Table:
    """Parameter counts of the recipe's model parts and SSL objective, built without weights."""
    import torch

    from soilnet.models.factory import count_parameters
    from soilnet.ssl.factory import build_objective

    shapes = recipe.data
    unloaded = without_pretrained(recipe)
    table = Table(
        title=f"{recipe.name}: {shapes.n_bands} bands, {shapes.patch_px} px, "
        f"{shapes.n_months} months x {shapes.n_climate_vars} climate variables"
    )
    table.add_column("part")
    table.add_column("parameters", justify="right")
    table.add_column("trainable", justify="right")
    with torch.device("meta"):  # shapes only: instant, no memory, no weights read
        model = unloaded.build_model()
        parts = {**dict(model.named_children()), "model": model}
        if recipe.ssl is not None:
            parts[f"ssl ({recipe.ssl.objective})"] = build_objective(
                recipe.ssl, unloaded.model, shapes.n_bands, shapes.n_climate_vars, shapes.n_months, shapes.patch_px
            )
    for name, part in parts.items():
        table.add_row(name, f"{count_parameters(part):,}", f"{count_parameters(part, trainable_only=True):,}")
    return table


def feed_table(recipe: RecipeConfig) -> Table:
    """Training FLOPs per sample, one H100's sample rate, and the reader cores that keep it fed."""
    from soilnet.recipes.gpu_feed import READER_RATES, UTILISATION, recipe_feeds

    table = Table(title=f"Feeding one H100 at {UTILISATION:.0%} of its dense bf16 peak (989 TFLOP/s)")
    table.add_column("stage")
    table.add_column("GFLOP / sample", justify="right")
    table.add_column("samples/s", justify="right")
    for pattern in READER_RATES:
        table.add_column(f"cores: {pattern}", justify="right")
    for feed in recipe_feeds(without_pretrained(recipe)):
        cores = [f"{feed.cores(rate):,.1f}" for rate in READER_RATES.values()]
        table.add_row(feed.stage, f"{feed.flops_per_sample / 1e9:,.1f}", f"{feed.samples_per_s:,.0f}", *cores)
    return table


def print_description(recipe: RecipeConfig) -> None:
    """The parameter table and the GPU feed table of a recipe."""
    results.print(parameter_table(recipe))
    results.print(feed_table(recipe))


@app.command("describe")
def describe(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML: local path or s3:// URL (see jobs/configs/recipes/).")],
) -> None:
    """Validate a recipe; print its data shapes, parameter counts per part and what it takes to feed a GPU."""
    from soilnet.recipes.recipe import load_recipe

    run_guarded(lambda: print_description(load_recipe(recipe)))
