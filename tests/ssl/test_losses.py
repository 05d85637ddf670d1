"""Contrastive losses on constructed cases, and the collapse monitor."""

import math

import pytest
import torch
import torch.nn.functional as F

from soilnet.ssl.losses import LossOutput, embedding_std, info_nce, nt_xent

B, D = 16, 512


def orthogonal(n: int, dim: int) -> torch.Tensor:
    """`n` orthonormal rows of width `dim`."""
    return torch.linalg.qr(torch.randn(dim, n)).Q.T


@pytest.mark.parametrize("temperature", [0.5, 0.1])
@pytest.mark.parametrize("symmetric", [True, False])
def test_info_nce_aligned_pairs_reach_the_minimum(temperature, symmetric) -> None:
    a = orthogonal(B, D)
    loss = info_nce(a, 3 * a, temperature, symmetric).loss  # scale does not matter (cosine)
    minimum = math.log(1 + (B - 1) * math.exp(-1 / temperature))
    assert loss.item() == pytest.approx(minimum, rel=1e-4)


def test_info_nce_unrelated_pairs_give_log_batch_size() -> None:
    a, b = torch.randn(B, D), torch.randn(B, D)
    assert info_nce(a, b).loss.item() == pytest.approx(math.log(B), abs=0.05)
    swapped = info_nce(a, a[torch.roll(torch.arange(B), 1)], temperature=0.1).loss
    assert swapped.item() > math.log(B)  # the true partner is among the negatives


def test_info_nce_gradients_and_bad_input() -> None:
    a = torch.randn(4, 8, requires_grad=True)
    b = torch.randn(4, 8, requires_grad=True)
    info_nce(a, b).loss.backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="both be"):
        info_nce(torch.randn(4, 8), torch.randn(4, 9))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        info_nce(a, b, temperature=0)


def test_nt_xent_constructed_cases() -> None:
    z = orthogonal(B, D)
    minimum = math.log(1 + (2 * B - 2) * math.exp(-1 / 0.5))
    assert nt_xent(z, z, 0.5).loss.item() == pytest.approx(minimum, rel=1e-4)
    unrelated = nt_xent(torch.randn(B, D), torch.randn(B, D), 0.5).loss
    assert unrelated.item() == pytest.approx(math.log(2 * B - 1), abs=0.05)
    with pytest.raises(ValueError, match="two views"):
        nt_xent(torch.randn(4, 8), torch.randn(5, 8))


def test_collapse_monitor() -> None:
    spread = embedding_std(torch.randn(4096, 64))
    assert spread.item() == pytest.approx(1 / math.sqrt(64), rel=0.05)
    collapsed = embedding_std(torch.ones(32, 64) + 1e-6 * torch.randn(32, 64))
    assert collapsed.item() < 1e-5
    out = info_nce(torch.ones(8, 16), torch.randn(8, 16))
    assert out.embedding_std.item() < 1e-6  # the collapsed side is reported
    assert out.extras["embedding_std_b"].item() > 0.1


def test_loss_output_metrics_are_floats() -> None:
    out = LossOutput(torch.tensor(2.0), torch.tensor(0.25), {"extra": torch.tensor(1.0)})
    assert out.metrics("ssl/") == {"ssl/loss": 2.0, "ssl/embedding_std": 0.25, "ssl/extra": 1.0}


def test_embedding_std_has_no_gradient() -> None:
    z = torch.randn(8, 4, requires_grad=True)
    assert not embedding_std(z).requires_grad
    assert F.normalize(z).requires_grad
