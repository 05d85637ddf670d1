"""Multi-scale sinusoidal location encoders: Space2Vec grid cells on projected x/y, and a sphere variant.

MISO encodes projected coordinates (EPSG:3338 scaled to [-1, 1]) with Space2Vec's grid-cell encoding
(Mai et al. 2020): for each of ``n_scales`` wavelengths ``lambda_s`` spaced geometrically between
``min_wavelength`` and ``max_wavelength``, ``sin`` and ``cos`` of ``x / lambda_s`` and ``y / lambda_s``
(64 scales -> 256 values), followed by a residual MLP. Here the wavelengths are in metres of the
projected CRS (defaults 1 km to 4000 km: MISO's 0.0005-2 of Alaska's half-width).

A projected encoding of a continent has edges, and lon/lat encodings have a seam at +-180 degrees,
where Alaska's Aleutians cross. The sphere variant is continuous everywhere: lon/lat become the 3-D
unit vector ``v`` on the sphere (radius R = 6371 km), and each scale contributes ``sin`` and ``cos``
of ``R * v_k / lambda_s`` for k = x, y, z (64 scales -> 384 values). Points a chord of d metres
apart differ in phase by at most ``d / lambda_s``, wherever they are, so 179.999 E and 179.999 W
encode as neighbours.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import torch
from pyproj import Transformer
from torch import nn

from soilnet.models.config import LocationConfig

EARTH_RADIUS_M = 6_371_000.0


def wavelengths(n_scales: int, min_wavelength: float, max_wavelength: float) -> torch.Tensor:
    """``n_scales`` wavelengths (float64) from `min_wavelength` to `max_wavelength`, geometrically spaced."""
    if n_scales < 1 or not 0 < min_wavelength <= max_wavelength:
        raise ValueError(
            f"need n_scales >= 1 and 0 < min_wavelength <= max_wavelength, got {n_scales}, "
            f"{min_wavelength}, {max_wavelength}"
        )
    if n_scales == 1:
        return torch.tensor([min_wavelength], dtype=torch.float64)
    ratio = math.log(max_wavelength / min_wavelength) / (n_scales - 1)
    return min_wavelength * torch.exp(ratio * torch.arange(n_scales, dtype=torch.float64))


def multiscale_sinusoids(coords: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    """``sin`` and ``cos`` of every coordinate (N, K) over every wavelength: (N, 2 * K * S) float32.

    Phases are computed in float64 (metres over a continent / 1 km reach thousands of radians).
    """
    phase = coords.double().unsqueeze(-1) / lambdas.to(coords.device)  # (N, K, S)
    return torch.cat([phase.sin(), phase.cos()], dim=-1).flatten(1).float()


def lonlat_to_unit(lonlat: torch.Tensor) -> torch.Tensor:
    """3-D unit vectors (N, 3) of lon/lat in degrees (N, 2): continuous across +-180 degrees."""
    if lonlat.ndim != 2 or lonlat.shape[1] != 2:
        raise ValueError(f"lon/lat must be (N, 2) degrees, got {tuple(lonlat.shape)}")
    lon, lat = torch.deg2rad(lonlat.double()).unbind(-1)
    return torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], dim=-1)


class ResidualBlock(nn.Module):
    """x + Dropout(ReLU(Linear(x))), then LayerNorm (Space2Vec's residual FC block)."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape as `x`."""
        return self.norm(x + self.dropout(torch.relu(self.linear(x))))


class LocationEncoder(nn.Module):
    """Multi-scale sinusoids of a location -> Linear -> residual blocks -> Linear: (N, out_dim).

    ``kind='grid'``: Space2Vec grid cells of projected x/y in metres (N, 2). ``kind='sphere'``:
    the same scales over the 3-D unit vector of lon/lat in degrees (N, 2), with no seam at +-180.
    """

    def __init__(
        self,
        kind: Literal["grid", "sphere"] = "sphere",
        n_scales: int = 64,
        min_wavelength: float = 1_000.0,
        max_wavelength: float = 4_000_000.0,
        hidden: int = 256,
        n_blocks: int = 3,
        out_dim: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.register_buffer("lambdas", wavelengths(n_scales, min_wavelength, max_wavelength), persistent=False)
        self.in_dim = n_scales * 2 * (2 if kind == "grid" else 3)
        self.input = nn.Linear(self.in_dim, hidden)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden, dropout) for _ in range(n_blocks)))
        self.output = nn.Linear(hidden, out_dim)
        self.out_dim = out_dim

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """The sinusoidal features (N, in_dim) before the MLP."""
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"locations must be (N, 2), got {tuple(coords.shape)}")
        if self.kind == "grid":
            return multiscale_sinusoids(coords, self.lambdas)
        return multiscale_sinusoids(lonlat_to_unit(coords) * EARTH_RADIUS_M, self.lambdas)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Location embeddings (N, out_dim): x/y metres ('grid') or lon/lat degrees ('sphere')."""
        return self.output(self.blocks(torch.relu(self.input(self.encode(coords)))))


def build_location_encoder(cfg: LocationConfig, out_dim: int) -> LocationEncoder:
    """The configured location encoder with embeddings of width `out_dim`."""
    return LocationEncoder(
        cfg.kind,
        cfg.n_scales,
        cfg.min_wavelength_m,
        cfg.max_wavelength_m,
        cfg.hidden,
        cfg.n_blocks,
        out_dim,
        cfg.dropout,
    )


@functools.lru_cache(maxsize=8)
def _to_wgs84(epsg: int) -> Transformer:
    """The transformer from EPSG:`epsg` to lon/lat (built once per CRS: building one costs milliseconds)."""
    return Transformer.from_crs(epsg, 4326, always_xy=True)


def to_lonlat(x: np.ndarray, y: np.ndarray, epsg: int) -> np.ndarray:
    """Lon/lat degrees (N, 2) of projected coordinates in EPSG:`epsg`."""
    lon, lat = _to_wgs84(epsg).transform(np.asarray(x), np.asarray(y))
    return np.stack([lon, lat], axis=-1)
