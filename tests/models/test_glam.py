"""GLAM attention block: shapes, fusion weights, gradients to every part."""

import torch

from soilnet.models.glam import GLAM, GlobalChannelAttention, LocalChannelAttention


def test_glam_keeps_the_shape_and_starts_as_an_equal_mix() -> None:
    block = GLAM(16, reduction=4)
    x = torch.randn(2, 16, 6, 5)
    out = block(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    local = x * block.local_channel(x)
    local = local * block.local_spatial(local)
    glob = block.global_channel(x)
    glob = glob + block.global_spatial(glob)
    torch.testing.assert_close(out, (x + local + glob) / 3)


def test_attention_weights_are_in_range() -> None:
    x = torch.randn(3, 8, 4, 4)
    weights = LocalChannelAttention()(x)
    assert weights.shape == (3, 8, 1, 1)
    assert bool(((weights > 0) & (weights < 1)).all())
    mixed = GlobalChannelAttention()(torch.ones(1, 8, 2, 2))
    torch.testing.assert_close(mixed, torch.ones(1, 8, 2, 2))  # rows of the attention sum to 1


def test_every_glam_parameter_gets_a_gradient() -> None:
    block = GLAM(8, reduction=2)
    block(torch.randn(2, 8, 5, 5)).square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
