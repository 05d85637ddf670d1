"""Encoders of monthly climate series (B, T, V) with missing months.

A month is missing where the optional boolean mask `missing` (B, T) is True or where all its
variables are NaN. Missing months and remaining NaN values are set to 0 (the training mean after per-variable
normalisation). True zeros (swe, ro, def) are values, never treated as missing.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn


def prepare_climate(
    climate: torch.Tensor, n_vars: int, missing: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated series with NaN and missing months zeroed, and the (B, T) missing-month mask."""
    if climate.ndim != 3 or climate.shape[-1] != n_vars:
        raise ValueError(f"climate must be (batch, months, {n_vars} variables), got {tuple(climate.shape)}")
    nan = torch.isnan(climate)
    month_missing = nan.all(dim=-1)
    if missing is not None:
        if missing.shape != climate.shape[:2]:
            raise ValueError(
                f"climate missing-month mask must be {tuple(climate.shape[:2])}, got {tuple(missing.shape)}"
            )
        month_missing = month_missing | missing.bool()
    drop = nan | month_missing.unsqueeze(-1)
    filled = torch.where(drop, torch.zeros_like(climate), climate)
    return filled, month_missing


def masked_mean(x: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, D) over months not missing; zeros where every month is missing."""
    keep = (~missing).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)


class RNNClimateEncoder(nn.Module):
    """LSTM or GRU over months; input is the filled values plus a missing-month indicator."""

    def __init__(
        self,
        kind: Literal["lstm", "gru"],
        n_vars: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        pooling: Literal["last", "mean"] = "last",
    ) -> None:
        super().__init__()
        rnn = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = rnn(
            n_vars + 1,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.n_vars = n_vars
        self.pooling = pooling
        self.out_dim = hidden_size

    def forward(self, climate: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Series embedding (B, hidden_size)."""
        filled, month_missing = prepare_climate(climate, self.n_vars, missing)
        inputs = torch.cat([filled, month_missing.unsqueeze(-1).to(filled.dtype)], dim=-1)
        outputs, state = self.rnn(inputs)
        if self.pooling == "mean":
            return masked_mean(outputs, month_missing)
        hidden = state[0] if isinstance(state, tuple) else state
        return hidden[-1]


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine position encodings (n_positions, dim) of Vaswani et al."""
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


class TransformerClimateEncoder(nn.Module):
    """Per-month linear embedding + sinusoidal positions -> Transformer encoder -> summary.

    Missing months are excluded from attention (key padding) and from mean pooling; the learned
    summary token, when used, is never masked.
    """

    def __init__(
        self,
        n_vars: int,
        n_months: int,
        d_model: int = 512,
        num_heads: int = 8,
        num_layers: int = 6,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        pooling: Literal["token", "mean"] = "token",
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_vars, d_model)
        self.register_buffer("positions", sinusoidal_positions(n_months, d_model), persistent=False)
        self.summary = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "token" else None
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.n_vars = n_vars
        self.n_months = n_months
        self.out_dim = d_model
        if self.summary is not None:
            nn.init.trunc_normal_(self.summary, std=0.02)

    def forward(self, climate: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Series embedding (B, d_model)."""
        filled, month_missing = prepare_climate(climate, self.n_vars, missing)
        t = filled.shape[1]
        if t > self.n_months:
            raise ValueError(f"climate has {t} months, the encoder was built for {self.n_months}")
        x = self.embed(filled) + self.positions[:t]
        if self.summary is None:
            # Rows without any valid month attend over the zero-filled series instead of nothing.
            padding = month_missing & ~month_missing.all(dim=1, keepdim=True)
            return masked_mean(self.encoder(x, src_key_padding_mask=padding), padding)
        token = self.summary.expand(x.shape[0], -1, -1)
        padding = torch.cat([torch.zeros_like(month_missing[:, :1]), month_missing], dim=1)
        return self.encoder(torch.cat([token, x], dim=1), src_key_padding_mask=padding)[:, 0]
