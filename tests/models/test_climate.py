"""Climate encoders over (B, T, V) with missing months given by NaN or a mask."""

import pytest
import torch

from soilnet.models.climate import (
    RNNClimateEncoder,
    TransformerClimateEncoder,
    prepare_climate,
    sinusoidal_positions,
)

T, V = 12, 3


def encoders() -> list[torch.nn.Module]:
    """One of each encoder and pooling, tiny, in eval mode (no dropout)."""
    transformer = {"d_model": 16, "num_heads": 2, "num_layers": 2, "dim_feedforward": 32}
    return [
        RNNClimateEncoder("lstm", V, hidden_size=8, pooling="last").eval(),
        RNNClimateEncoder("gru", V, hidden_size=8, pooling="mean").eval(),
        TransformerClimateEncoder(V, T, pooling="token", **transformer).eval(),
        TransformerClimateEncoder(V, T, pooling="mean", **transformer).eval(),
    ]


@pytest.mark.parametrize("encoder", encoders(), ids=["lstm", "gru-mean", "tf-token", "tf-mean"])
def test_shapes_and_missing_months(encoder) -> None:
    climate = torch.randn(4, T, V)
    out = encoder(climate)
    assert out.shape == (4, encoder.out_dim) and out.dtype == torch.float32
    with_nan = climate.clone()
    with_nan[:, 5] = float("nan")
    mask = torch.zeros(4, T, dtype=torch.bool)
    mask[:, 5] = True
    other_values = climate.clone()
    other_values[:, 5] = 100.0
    by_nan = encoder(with_nan)
    assert torch.isfinite(by_nan).all()
    torch.testing.assert_close(by_nan, encoder(other_values, mask))
    assert not torch.allclose(by_nan, out)
    all_missing = encoder(torch.full((2, T, V), float("nan")))
    assert torch.isfinite(all_missing).all()


def test_rnn_defaults_follow_the_reference() -> None:
    lstm = RNNClimateEncoder("lstm", 14)
    assert (lstm.rnn.hidden_size, lstm.rnn.num_layers, lstm.out_dim) == (128, 2, 128)


def test_true_zeros_are_values_and_partial_nans_are_filled() -> None:
    climate = torch.zeros(1, 3, 2)
    climate[0, 1, 0] = float("nan")
    filled, missing = prepare_climate(climate, 2)
    assert missing.tolist() == [[False, False, False]]
    assert torch.equal(filled, torch.zeros(1, 3, 2))


def test_bad_climate_input_is_named() -> None:
    encoder = TransformerClimateEncoder(V, T, d_model=8, num_heads=2, num_layers=1)
    with pytest.raises(ValueError, match="3 variables"):
        encoder(torch.randn(2, T, 4))
    with pytest.raises(ValueError, match="13 months, the encoder was built for 12"):
        encoder(torch.randn(2, 13, V))
    with pytest.raises(ValueError, match="missing-month mask must be"):
        encoder(torch.randn(2, T, V), torch.zeros(2, T - 1, dtype=torch.bool))


def test_sinusoidal_positions() -> None:
    table = sinusoidal_positions(61, 7)
    assert table.shape == (61, 7)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0]))
    assert len({tuple(row.tolist()) for row in table}) == 61
