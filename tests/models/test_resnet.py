"""ResNet encoder: any timm depth and band count, GLAM switchable, pretrained weights from a URL."""

import pytest
import safetensors.torch
import timm
import torch

from soilnet import storage
from soilnet.models.config import ImageEncoderConfig
from soilnet.models.factory import build_image_encoder, count_parameters
from soilnet.models.resnet import ResNetEncoder

TINY = {"timm_name": "resnet18", "in_chans": 5, "layers": [1, 1, 1, 1]}


def test_pooled_and_dense_features() -> None:
    encoder = ResNetEncoder(**TINY, glam=True)
    assert encoder.out_dim == 512 and encoder.glam is not None
    x = torch.rand(2, 5, 64, 64)
    assert encoder(x).shape == (2, 512)
    assert encoder.dense_features(x).shape == (2, 512, 2, 2)


def test_deep_stem_resnets_work_too() -> None:
    encoder = ResNetEncoder("resnet10t", in_chans=14, glam=True).eval()
    assert encoder(torch.rand(1, 14, 32, 32)).shape == (1, encoder.out_dim)
    assert encoder.backbone.conv1[0].in_channels == 14


def test_glam_can_be_switched_off() -> None:
    with_glam = ResNetEncoder(**TINY, glam=True)
    without = ResNetEncoder(**TINY, glam=False)
    assert without.glam is None
    assert count_parameters(with_glam) == count_parameters(without) + count_parameters(with_glam.glam)


def test_resnet101_with_fourteen_bands_and_glam() -> None:
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        encoder = ResNetEncoder("resnet101", in_chans=14, glam=True)
        reference = timm.create_model("resnet101", pretrained=False, num_classes=0)
    assert count_parameters(reference) == 42_500_160
    extra_stem = 11 * 64 * 7 * 7
    assert encoder.out_dim == 2048
    assert encoder.glam.local_spatial.reduce.in_channels == 512  # after layer 2
    assert count_parameters(encoder) == (count_parameters(reference) + extra_stem + count_parameters(encoder.glam))


def test_not_a_resnet_is_rejected() -> None:
    with pytest.raises(ValueError, match="'resnet9000' is not a timm model"):
        ResNetEncoder("resnet9000", in_chans=3)
    with pytest.raises(ValueError, match="'vit_tiny_patch16_224' is not a timm ResNet"):
        ResNetEncoder("vit_tiny_patch16_224", in_chans=3)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_pretrained_rgb_weights_are_cloned_to_more_bands(suffix, s3_bucket) -> None:
    source = timm.create_model("resnet18", pretrained=False, num_classes=7, layers=(1, 1, 1, 1))
    state = source.state_dict()
    url = storage.join(s3_bucket, f"weights{suffix}")
    with storage.open_file(url, "wb") as handle:
        if suffix == ".safetensors":
            handle.write(safetensors.torch.save(state))
        else:
            torch.save(state, handle)
    cfg = ImageEncoderConfig(
        arch="resnet",
        timm_name="resnet18",
        resnet_layers=[1, 1, 1, 1],
        glam=False,
        pretrained=url,
        pretrained_bands=[3, 2, 1],
    )
    encoder = build_image_encoder(cfg, n_bands=5)
    conv = encoder.backbone.conv1.weight
    rgb = state["conv1.weight"]
    assert torch.equal(conv[:, 3], rgb[:, 0]) and torch.equal(conv[:, 1], rgb[:, 2])
    assert torch.equal(conv[:, 0], rgb[:, 0]) and torch.equal(conv[:, 4], rgb[:, 0])
    assert torch.equal(encoder.backbone.layer4[0].conv2.weight, state["layer4.0.conv2.weight"])


def test_pretrained_weights_of_another_model_are_rejected(tmp_path) -> None:
    url = str(tmp_path / "vit.safetensors")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1)
    with storage.open_file(url, "wb") as handle:
        handle.write(safetensors.torch.save(vit.state_dict()))
    encoder = ResNetEncoder(**TINY)
    with pytest.raises(KeyError, match=r"conv1\.weight"):
        encoder.load_pretrained(url, [0, 1, 2])


def test_frozen_encoder_has_no_trainable_parameters_and_stays_in_eval() -> None:
    cfg = ImageEncoderConfig(arch="resnet", timm_name="resnet18", resnet_layers=[1, 1, 1, 1], frozen=True)
    encoder = build_image_encoder(cfg, n_bands=3)
    assert count_parameters(encoder, trainable_only=True) == 0
    encoder.train()
    assert not encoder.training and not encoder.backbone.bn1.training
