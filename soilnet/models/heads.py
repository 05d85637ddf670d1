"""Regression heads: an MLP, optionally predicting a log-variance per target, and its loss."""

from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Sequential):
    """Linear layers with ReLU between them: in_dim -> hidden... -> out_dim."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)


class RegressionHead(nn.Module):
    """Predicts `n_targets` values, and with `uncertainty` a log-variance for each.

    Returns a dict: ``prediction`` (N, n_targets) and, with uncertainty, ``log_var`` (N, n_targets).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: list[int],
        n_targets: int = 1,
        uncertainty: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_targets = n_targets
        self.uncertainty = uncertainty
        self.mlp = MLPHead(in_dim, hidden, n_targets * (2 if uncertainty else 1), dropout)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Prediction (and log-variance) for each row of `features` (N, in_dim)."""
        out = self.mlp(features)
        if not self.uncertainty:
            return {"prediction": out}
        mean, log_var = out.split(self.n_targets, dim=-1)
        return {"prediction": mean, "log_var": log_var}


def gaussian_nll(prediction: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant) over non-NaN targets.

    ``0.5 * (log_var + (target - prediction)^2 / exp(log_var))``; NaN targets (a property not
    measured at that point) are left out.
    """
    if target.shape != prediction.shape:
        raise ValueError(f"target shape {tuple(target.shape)} differs from prediction {tuple(prediction.shape)}")
    observed = ~torch.isnan(target)
    if not observed.any():
        raise ValueError("every target is NaN: nothing to fit")
    residual = torch.where(observed, target - prediction, torch.zeros_like(prediction))
    nll = 0.5 * (log_var + residual.square() * torch.exp(-log_var))
    return nll[observed].mean()
