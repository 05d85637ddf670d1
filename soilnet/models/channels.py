"""Adapting pretrained first-layer weights to a different number of input bands."""

from __future__ import annotations

import torch


def clone_input_channels(weight: torch.Tensor, n_bands: int, pretrained_bands: list[int]) -> torch.Tensor:
    """Expand a first-layer kernel (O, K, kh, kw) pretrained on K channels to `n_bands` inputs.

    Pretrained channel i goes to input band ``pretrained_bands[i]``; every other band receives a
    copy of pretrained channel 0 (the R channel of RGB weights), as Tresson et al. did for DEM.
    """
    if weight.ndim != 4:
        raise ValueError(f"expected a conv kernel (O, K, kh, kw), got shape {tuple(weight.shape)}")
    k = weight.shape[1]
    if len(pretrained_bands) != k:
        raise ValueError(
            f"image.pretrained_bands has {len(pretrained_bands)} entries but the pretrained "
            f"first layer has {k} channels"
        )
    bad = [b for b in pretrained_bands if not 0 <= b < n_bands]
    if bad:
        raise ValueError(f"image.pretrained_bands {bad} out of range for {n_bands} input bands")
    out = weight[:, :1].repeat(1, n_bands, 1, 1).clone()
    out[:, pretrained_bands] = weight
    return out


def adapt_first_layer(
    state: dict[str, torch.Tensor],
    key: str,
    n_bands: int,
    pretrained_bands: list[int],
) -> dict[str, torch.Tensor]:
    """A copy of `state` whose first-layer kernel `key` accepts `n_bands` inputs.

    Weights that already have `n_bands` input channels are kept as they are.
    """
    if key not in state:
        raise KeyError(f"pretrained weights have no first-layer kernel {key!r}")
    adapted = dict(state)
    if state[key].shape[1] != n_bands:
        adapted[key] = clone_input_channels(state[key], n_bands, pretrained_bands)
    return adapted
