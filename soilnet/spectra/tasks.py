"""What the Ray Train workers optimise for spectra: VAE pretraining and NIR->MIR conversion.

Both follow the training loop's task interface (``score``, ``build``, ``param_groups``, ``loss``).

- `SpectralVAETask`: reconstruction of a second scan repeat from the first one's latent sample
  (mean squared error per spectral point), plus the KL weight (warm-up, ``beta``) times the KL
  divergence per spectral point, plus ``repeat_weight`` times the squared distance between the
  latent means of the two repeats (repeats of one sample are positive views).
- `ConversionTask`: a NIR encoder into the frozen MIR decoder; squared error of the decoded MIR
  against the sample's measured (preprocessed, repeat-averaged) MIR, plus ``latent_weight`` times
  the squared distance to the MIR encoder's latent mean of that MIR spectrum.
"""

from __future__ import annotations

import torch
from torch import nn

from soilnet.spectra.config import ConversionConfig, VAEConfig
from soilnet.spectra.vae import ConvEncoder, SpectraConverter, SpectralVAE
from soilnet.training.config import OptimConfig
from soilnet.training.tasks import weighted_mean


def trainable_group(module: nn.Module, optim: OptimConfig) -> list[dict]:
    """One parameter group of every trainable parameter at ``optim.lr``."""
    return [{"params": [p for p in module.parameters() if p.requires_grad], "lr": optim.lr, "name": "all"}]


def kl_per_point(mean: torch.Tensor, log_var: torch.Tensor, length: int) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) of each sample (B,), divided by the number of spectral points."""
    return -0.5 * (1.0 + log_var - mean.square() - log_var.exp()).sum(dim=1) / length


class SpectralVAETask:
    """Pretraining of the spectral VAE on unlabelled scans (see the module docstring)."""

    score = "train_loss"

    def __init__(self, length: int, cfg: VAEConfig) -> None:
        self.length, self.cfg = length, cfg

    def build(self) -> SpectralVAE:
        """A freshly initialised VAE."""
        return SpectralVAE(self.length, self.cfg)

    def param_groups(self, module: nn.Module, optim: OptimConfig) -> list[dict]:
        """Every parameter at ``lr``."""
        return trainable_group(module, optim)

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted loss of a batch and its parts (reconstruction MSE, KL, repeat distance, KL weight)."""
        out = module(batch["spectrum"], batch["positive"])
        recon = (out["recon"].float() - batch["positive"]).square().mean(dim=1)
        kl = kl_per_point(out["mean"].float(), out["log_var"].float(), self.length)
        repeat = (out["mean"].float() - out["positive_mean"].float()).square().mean(dim=1)
        per_sample = recon + out["kl_weight"] * kl + self.cfg.repeat_weight * repeat
        valid = batch["valid"]
        monitors = {
            "recon_mse": float(weighted_mean(recon, valid).detach()),
            "kl_per_point": float(weighted_mean(kl, valid).detach()),
            "repeat_distance": float(weighted_mean(repeat, valid).detach()),
            "kl_weight": float(out["kl_weight"]),
        }
        return weighted_mean(per_sample, valid), monitors

    def after_step(self, module: SpectralVAE, step: int, total_steps: int) -> None:
        """Advance the KL warm-up."""
        module.warm_up(step)


class ConversionTask:
    """NIR->MIR conversion through the frozen MIR decoder of a pretrained VAE (see the module docstring)."""

    score = "train_loss"

    def __init__(
        self,
        nir_length: int,
        vae: VAEConfig,
        decoder_state: dict[str, torch.Tensor],
        mir_length: int,
        cfg: ConversionConfig,
    ) -> None:
        self.nir_length, self.mir_length, self.vae, self.cfg = nir_length, mir_length, vae, cfg
        self.decoder_state = decoder_state

    def build(self) -> SpectraConverter:
        """A fresh NIR encoder feeding the pretrained MIR decoder (frozen)."""
        mir = SpectralVAE(self.mir_length, self.vae)
        mir.decoder.load_state_dict(self.decoder_state)
        encoder = ConvEncoder(self.nir_length, self.vae.channels, self.vae.kernel, self.vae.latent_dim)
        return SpectraConverter(encoder, mir.decoder)

    def param_groups(self, module: nn.Module, optim: OptimConfig) -> list[dict]:
        """The NIR encoder's parameters at ``lr`` (the decoder is frozen)."""
        return trainable_group(module, optim)

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Converted-MIR error plus the latent distance to the MIR encoder's mean; monitors both."""
        out = module(batch["spectrum"])
        recon = (out["recon"].float() - batch["mir"]).square().mean(dim=1)
        latent = (out["mean"].float() - batch["mir_latent"]).square().mean(dim=1)
        valid = batch["valid"]
        monitors = {
            "conversion_mse": float(weighted_mean(recon, valid).detach()),
            "latent_distance": float(weighted_mean(latent, valid).detach()),
        }
        return weighted_mean(recon + self.cfg.latent_weight * latent, valid), monitors

    def after_step(self, module: nn.Module, step: int, total_steps: int) -> None:
        """Nothing to schedule."""
