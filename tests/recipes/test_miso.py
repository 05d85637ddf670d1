"""The miso recipe's image encoder: a foundation model read from a file (local or S3), any band count, frozen or not."""

import pytest
import torch

from soilnet import storage
from soilnet.models.checkpoint import read_state_dict
from soilnet.models.inr_model import INRSoilModel
from soilnet.recipes.recipe import RecipeConfig
from tests.fixtures.tiny_models import save_tiny_foundation, tiny_miso_recipe_dict


@pytest.mark.parametrize("arch", ["resnet", "vit"])
def test_foundation_weights_from_a_file_with_a_band_adapter(tmp_path, arch) -> None:
    weights = save_tiny_foundation(str(tmp_path / f"{arch}.safetensors"), arch)
    recipe = RecipeConfig.model_validate(tiny_miso_recipe_dict(arch, pretrained=weights))
    model = recipe.build_model()
    assert isinstance(model, INRSoilModel)
    stored = read_state_dict(weights)
    first = "conv1.weight" if arch == "resnet" else "patch_embed.proj.weight"
    adapted = model.image_encoder.backbone.state_dict()[first]
    assert adapted.shape[1] == 5 and stored[first].shape[1] == 3  # RGB weights read by 5 bands
    assert torch.equal(adapted[:, :3], stored[first]) and torch.equal(adapted[:, 3], stored[first][:, 0])
    deeper = "layer4.0.conv2.weight" if arch == "resnet" else "blocks.1.mlp.fc2.weight"
    assert torch.equal(model.image_encoder.backbone.state_dict()[deeper], stored[deeper])
    out = model.eval()(torch.rand(2, 5, 32, 32), torch.randn(2, 12, 3))
    assert out["prediction"].shape == (2, 1)


def test_foundation_weights_from_the_object_store_frozen(s3_bucket, tmp_path) -> None:
    url = storage.join(s3_bucket, "foundation", "resnet.safetensors")
    save_tiny_foundation(url)
    model = RecipeConfig.model_validate(tiny_miso_recipe_dict(pretrained=url, frozen=True)).build_model().train()
    encoder = model.image_encoder
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.training
    assert all(p.requires_grad for p in model.inr.parameters())
    with pytest.raises(FileNotFoundError, match=r"absent\.safetensors"):
        missing = tiny_miso_recipe_dict(pretrained=str(tmp_path / "absent.safetensors"))
        RecipeConfig.model_validate(missing).build_model()
