"""Recipe YAML files: every shipped recipe validates; bad files are reported with their name."""

from pathlib import Path

import pytest

from soilnet import storage
from soilnet.recipes.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_file_validates(path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem


def test_reference_recipes_follow_the_papers() -> None:
    soilnet = load_recipe(RECIPES / "soilnet.yaml")
    assert soilnet.model.image.timm_name == "resnet101" and soilnet.model.image.glam
    assert soilnet.model.climate.kind == "lstm" and soilnet.model.climate.hidden_size == 128
    assert soilnet.data.n_bands == 14 and soilnet.data.n_months == 61
    ssl = load_recipe(RECIPES / "ssl-soilnet.yaml")
    assert (ssl.model.image.patch_size, ssl.model.image.img_size) == (8, 64)
    assert ssl.ssl.objective == "cross_modal" and ssl.ssl.temperature == 0.5
    dino = load_recipe(RECIPES / "dino.yaml").ssl.dino
    assert (dino.teacher_temperature, dino.student_temperature, dino.out_dim) == (0.04, 0.1, 65536)


def test_recipes_load_from_object_storage(s3_bucket) -> None:
    url = storage.join(s3_bucket, "recipes", "soilnet-tiny.yaml")
    with storage.open_file(url, "wb") as handle:
        handle.write((RECIPES / "soilnet-tiny.yaml").read_bytes())
    assert load_recipe(url).name == "soilnet-tiny"


def test_bad_recipes_name_the_file_and_field(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (RECIPES / "soilnet-tiny.yaml").read_text().replace("patch_px: 32", "patch_px: 48")
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.yaml: invalid recipe[\s\S]*img_size 32 differs"):
        load_recipe(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"list\.yaml: a recipe must be a YAML mapping"):
        load_recipe(listing)
