"""Regression heads and the Gaussian negative log-likelihood."""

import math

import pytest
import torch

from soilnet.models.factory import count_parameters
from soilnet.models.heads import MLPHead, RegressionHead, gaussian_nll


def test_tresson_head_has_the_published_size() -> None:
    head = MLPHead(768, [512, 512], 1)
    assert count_parameters(head) == 656_897
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_uncertainty_head_predicts_mean_and_log_variance() -> None:
    head = RegressionHead(8, [4], n_targets=3, uncertainty=True)
    out = head(torch.randn(5, 8))
    assert set(out) == {"prediction", "log_var"}
    assert out["prediction"].shape == out["log_var"].shape == (5, 3)
    assert set(RegressionHead(8, [], n_targets=2)(torch.randn(5, 8))) == {"prediction"}


def test_gaussian_nll_values_and_missing_targets() -> None:
    prediction = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    log_var = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    target = torch.tensor([[3.0, 2.0], [float("nan"), 0.0]])
    expected = [0.5 * 4, 0.5 * (math.log(4.0) + 1), 0.0]
    torch.testing.assert_close(gaussian_nll(prediction, log_var, target), torch.tensor(expected).mean())
    with pytest.raises(ValueError, match="every target is NaN"):
        gaussian_nll(prediction, log_var, torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"target shape \(2,\)"):
        gaussian_nll(prediction, log_var, torch.zeros(2))
