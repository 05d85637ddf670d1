"""The spectral VAE: a 1-D convolutional encoder and decoder of preprocessed spectra, and the NIR->MIR converter.

Encoder: stride-2 Conv1d + GELU layers (one per entry of ``channels``), flattened, then one
linear layer to the latent mean and log-variance. Decoder: a linear layer to the coarsest
feature map, stride-2 transposed convolutions back up, a last Conv1d to one channel, cropped to
the spectrum's length. The KL weight ramps linearly from 0 to ``beta`` over ``kl_warmup_steps``
optimiser steps (`SpectralVAE.warm_up`, called after each step by the training task); it is a buffer, so a
resumed run continues the ramp where it stopped.

`SpectraConverter` is a NIR encoder of the same shape feeding a frozen MIR decoder: the NIR
spectrum is mapped into the MIR latent space and decoded as a MIR spectrum.
"""

from __future__ import annotations

import torch
from torch import nn

from soilnet.spectra.config import VAEConfig

#: Log-variances are clamped to this range (exp stays finite in bf16 and float32).
LOG_VAR_RANGE = (-12.0, 8.0)


class ConvEncoder(nn.Module):
    """Spectra (B, L) -> latent mean and log-variance (B, D) each."""

    def __init__(self, length: int, channels: list[int], kernel: int, latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 1
        for width in channels:
            layers += [nn.Conv1d(previous, width, kernel, stride=2, padding=kernel // 2), nn.GELU()]
            previous = width
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, length)).numel()
        self.head = nn.Linear(flat, 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the posterior of each spectrum."""
        out = self.head(self.features(spectra.unsqueeze(1)).flatten(1))
        mean, log_var = out.split(self.latent_dim, dim=1)
        return mean, log_var.clamp(*LOG_VAR_RANGE)


class ConvDecoder(nn.Module):
    """Latents (B, D) -> spectra (B, L)."""

    def __init__(self, length: int, channels: list[int], kernel: int, latent_dim: int) -> None:
        super().__init__()
        self.length = length
        self.base = -(-length // 2 ** len(channels))
        widths = list(reversed(channels))
        self.width = widths[0]
        self.project = nn.Linear(latent_dim, widths[0] * self.base)
        layers: list[nn.Module] = []
        for current, following in zip(widths, [*widths[1:], widths[-1]], strict=True):
            layers += [nn.ConvTranspose1d(current, following, 4, stride=2, padding=1), nn.GELU()]
        layers.append(nn.Conv1d(widths[-1], 1, kernel, padding=kernel // 2))
        self.layers = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoded spectra, cropped to the configured length."""
        maps = self.project(latents).view(latents.shape[0], self.width, self.base)
        return self.layers(maps)[:, 0, : self.length]


class SpectralVAE(nn.Module):
    """A beta-VAE of spectra with KL warm-up; ``forward`` encodes an anchor scan and, optionally, a repeat of it."""

    def __init__(self, length: int, cfg: VAEConfig) -> None:
        super().__init__()
        self.length, self.beta, self.warmup = length, cfg.beta, cfg.kl_warmup_steps
        self.encoder = ConvEncoder(length, cfg.channels, cfg.kernel, cfg.latent_dim)
        self.decoder = ConvDecoder(length, cfg.channels, cfg.kernel, cfg.latent_dim)
        self.register_buffer("kl_weight", torch.tensor(0.0 if cfg.kl_warmup_steps else cfg.beta))

    def warm_up(self, step: int) -> None:
        """Set the KL weight reached after optimiser step `step` of the warm-up."""
        ramp = 1.0 if self.warmup == 0 else min(1.0, step / self.warmup)
        self.kl_weight.fill_(self.beta * ramp)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Posterior of `anchor`, its decoded sample (the mean in eval mode), and the posterior mean of `positive`."""
        mean, log_var = self.encoder(anchor)
        latent = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if self.training else mean
        out = {"mean": mean, "log_var": log_var, "recon": self.decoder(latent), "kl_weight": self.kl_weight}
        if positive is not None:
            out["positive_mean"] = self.encoder(positive)[0]
        return out

    @torch.no_grad()
    def embed(self, spectra: torch.Tensor) -> torch.Tensor:
        """Latent means (the embeddings of downstream models)."""
        return self.encoder(spectra)[0]

    @torch.no_grad()
    def reconstruct(self, spectra: torch.Tensor) -> torch.Tensor:
        """Decoded latent means."""
        return self.decoder(self.encoder(spectra)[0])


class SpectraConverter(nn.Module):
    """A trainable encoder of one fidelity into the latent space of a frozen decoder of another (NIR -> MIR)."""

    def __init__(self, encoder: ConvEncoder, decoder: ConvDecoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        for parameter in self.decoder.parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> SpectraConverter:
        """Train mode for the encoder; the frozen decoder stays in eval mode."""
        super().train(mode)
        self.decoder.eval()
        return self

    def forward(self, spectra: torch.Tensor) -> dict[str, torch.Tensor]:
        """Latent mean of the source spectra and the target spectra decoded from it."""
        mean, _ = self.encoder(spectra)
        return {"mean": mean, "recon": self.decoder(mean)}

    @torch.no_grad()
    def convert(self, spectra: torch.Tensor) -> torch.Tensor:
        """Converted spectra."""
        return self.forward(spectra)["recon"]
