"""Channel cloning of pretrained first-layer kernels for more input bands."""

import pytest
import torch

from soilnet.models.channels import adapt_first_layer, clone_input_channels


def test_pretrained_channels_go_to_their_bands_and_others_clone_red() -> None:
    weight = torch.randn(4, 3, 3, 3)
    out = clone_input_channels(weight, n_bands=6, pretrained_bands=[3, 2, 1])
    assert out.shape == (4, 6, 3, 3)
    assert torch.equal(out[:, 3], weight[:, 0])  # R
    assert torch.equal(out[:, 2], weight[:, 1])  # G
    assert torch.equal(out[:, 1], weight[:, 2])  # B
    for band in (0, 4, 5):
        assert torch.equal(out[:, band], weight[:, 0])
    out[:, 0] += 1  # clones are copies, not views of the pretrained kernel
    assert not torch.equal(out[:, 0], weight[:, 0])


def test_bad_band_mapping_is_rejected() -> None:
    weight = torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match="3 channels"):
        clone_input_channels(weight, 6, [0, 1])
    with pytest.raises(ValueError, match=r"\[7\] out of range for 6"):
        clone_input_channels(weight, 6, [0, 1, 7])
    with pytest.raises(ValueError, match="conv kernel"):
        clone_input_channels(torch.randn(4, 3), 6, [0, 1, 2])


def test_adapt_first_layer_only_touches_mismatched_kernels() -> None:
    state = {"conv1.weight": torch.randn(2, 3, 1, 1), "bn.bias": torch.randn(2)}
    same = adapt_first_layer(state, "conv1.weight", 3, [2, 1, 0])
    assert same["conv1.weight"] is state["conv1.weight"]
    wider = adapt_first_layer(state, "conv1.weight", 4, [0, 1, 2])
    assert wider["conv1.weight"].shape == (2, 4, 1, 1)
    assert wider["bn.bias"] is state["bn.bias"]
    with pytest.raises(KeyError, match="patch_embed"):
        adapt_first_layer(state, "patch_embed.proj.weight", 4, [0, 1, 2])
