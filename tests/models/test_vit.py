"""ViT encoder: paper parameter counts, tiny ViTs, other input sizes, pretrained weights."""

import pytest
import safetensors.torch
import timm
import torch

from soilnet import storage
from soilnet.models.factory import count_parameters
from soilnet.models.vit import ViTEncoder

TINY = {
    "timm_name": "vit_tiny_patch16_224",
    "img_size": 32,
    "patch_size": 8,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
}


def test_vit_b16_backbone_and_tresson_head_match_the_paper(recipe) -> None:
    dino = recipe("dino")
    assert (dino.data.n_bands, dino.data.patch_px) == (3, 224)
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        model = dino.build_model()
    backbone = model.image_encoder.backbone
    embeddings = backbone.pos_embed.numel() + backbone.cls_token.numel()
    assert count_parameters(backbone) - embeddings == 85_646_592
    assert count_parameters(model.head) == 656_897
    assert count_parameters(model, trainable_only=True) == 656_897


def test_ssl_soilnet_vit_is_64_px_with_patch_8(recipe) -> None:
    with torch.device("meta"):
        encoder = recipe("ssl-soilnet").build_model().image_encoder
    assert encoder.cell == 8 and encoder.out_dim == 768
    assert encoder.backbone.pos_embed.shape == (1, 1 + 8 * 8, 768)
    assert len(encoder.backbone.blocks) == 12 and encoder.backbone.blocks[0].attn.num_heads == 12


@pytest.mark.parametrize("pool", ["avg", "token"])
def test_tiny_vit_shapes_at_native_and_other_sizes(pool) -> None:
    encoder = ViTEncoder(in_chans=4, global_pool=pool, **TINY)
    assert encoder.cell == 8 and encoder.out_dim == 32
    assert encoder(torch.rand(2, 4, 32, 32)).shape == (2, 32)
    assert encoder(torch.rand(3, 4, 16, 16)).shape == (3, 32)  # DINO local crops


def test_dense_features_are_a_token_grid_and_need_mean_pooling() -> None:
    encoder = ViTEncoder(in_chans=4, **TINY)
    assert encoder.dense_features(torch.rand(1, 4, 32, 48)).shape == (1, 32, 4, 6)
    token = ViTEncoder(in_chans=4, global_pool="token", **TINY)
    with pytest.raises(ValueError, match="global_pool 'avg'"):
        token.dense_features(torch.rand(1, 4, 32, 32))


def test_bad_vit_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="img_size 36 is not a multiple of the patch 8"):
        ViTEncoder(in_chans=4, **{**TINY, "img_size": 36})
    with pytest.raises(ValueError, match="'resnet18' is not a timm VisionTransformer"):
        ViTEncoder("resnet18", in_chans=3, img_size=32)


def test_pretrained_rgb_weights_at_another_size_fit_a_four_band_vit(tmp_path) -> None:
    shape = {k: v for k, v in TINY.items() if k != "timm_name"}
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5, **{**shape, "img_size": 64})
    state = source.state_dict()
    url = str(tmp_path / "vit.safetensors")
    with storage.open_file(url, "wb") as handle:
        handle.write(safetensors.torch.save(state))
    encoder = ViTEncoder(in_chans=4, **TINY)
    encoder.load_pretrained(url, [0, 1, 2])
    kernel = encoder.backbone.patch_embed.proj.weight
    assert torch.equal(kernel[:, :3], state["patch_embed.proj.weight"])
    assert torch.equal(kernel[:, 3], state["patch_embed.proj.weight"][:, 0])  # DEM clones R
    assert encoder.backbone.pos_embed.shape == (1, 1 + 16, 32)  # resampled from 64 px
    assert torch.equal(encoder.backbone.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"])
