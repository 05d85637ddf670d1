"""The ``spectra`` configuration section: preprocessing chains, the spectral VAE, NIR->MIR conversion, property models.

Where the SSML paper is silent (layer sizes, beta, optimiser, downstream algorithms) the defaults
follow chemometrics and OSSL: MIR absorbance on 600-4000 cm-1 at 2 cm-1, NIR on 1350-2550 nm at
2 nm, SNV, Savitzky-Golay windows of 11 with polynomial order 2, PLSR and SNV -> PCA(120) -> Cubist.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from soilnet.configbase import StrictModel
from soilnet.training.config import OptimConfig


class ResampleStep(StrictModel):
    """Linear interpolation onto a regular grid; the grid must lie inside the measured axis."""

    kind: Literal["resample"] = "resample"
    start: float | None = Field(None, gt=0, description="First grid value (axis unit); None: the instrument's first.")
    stop: float | None = Field(None, gt=0, description="Last grid value (axis unit); None: the instrument's last.")
    step: float = Field(2.0, gt=0, description="Grid spacing (cm-1 or nm).")

    @model_validator(mode="after")
    def _ordered(self) -> ResampleStep:
        if self.start is not None and self.stop is not None and self.stop <= self.start:
            raise ValueError(f"resample: stop {self.stop} must be above start {self.start}")
        return self


class QuantityStep(StrictModel):
    """Conversion to absorbance, log10(1 / R), or to reflectance, 10^-A (a no-op if already there)."""

    kind: Literal["absorbance", "reflectance"]


class SNVStep(StrictModel):
    """Standard normal variate: each spectrum minus its mean, divided by its standard deviation (ddof 1)."""

    kind: Literal["snv"] = "snv"


class SavGolStep(StrictModel):
    """Savitzky-Golay smoothing (deriv 0) or derivative along the axis (`scipy.signal.savgol_filter`)."""

    kind: Literal["savgol"] = "savgol"
    window: int = Field(11, ge=3, description="Window length in points (odd).")
    polyorder: int = Field(2, ge=0, description="Polynomial order (below the window).")
    deriv: int = Field(0, ge=0, le=2, description="Derivative order (per axis unit: the grid spacing is the delta).")

    @model_validator(mode="after")
    def _valid_window(self) -> SavGolStep:
        if self.window % 2 == 0:
            raise ValueError(f"savgol: window {self.window} must be odd")
        if self.polyorder >= self.window:
            raise ValueError(f"savgol: polyorder {self.polyorder} must be below the window {self.window}")
        if self.deriv > self.polyorder:
            raise ValueError(f"savgol: deriv {self.deriv} exceeds polyorder {self.polyorder}")
        return self


Step = Annotated[ResampleStep | QuantityStep | SNVStep | SavGolStep, Field(discriminator="kind")]


class PreprocessConfig(StrictModel):
    """An ordered chain of preprocessing steps, recorded with every model that uses it."""

    steps: list[Step] = Field(description="Steps in order (resample, absorbance/reflectance, snv, savgol).")


def mir_preprocessing() -> PreprocessConfig:
    """MIR default: absorbance on OSSL's grid, 600-4000 cm-1 at 2 cm-1, then SNV."""
    return PreprocessConfig(
        steps=[QuantityStep(kind="absorbance"), ResampleStep(start=600, stop=4000, step=2), SNVStep()]
    )


def nir_preprocessing() -> PreprocessConfig:
    """NIR default: absorbance on OSSL's NeoSpectra grid, 1350-2550 nm at 2 nm, then SNV."""
    return PreprocessConfig(
        steps=[QuantityStep(kind="absorbance"), ResampleStep(start=1350, stop=2550, step=2), SNVStep()]
    )


class Region(StrictModel):
    """A named axis interval over which reconstruction and conversion errors are reported."""

    name: str = Field(min_length=1, description="Label of the region (absorbers in it).")
    start: float = Field(description="Lower bound (axis unit).")
    stop: float = Field(description="Upper bound (axis unit).")


def mir_regions() -> list[Region]:
    """MIR regions: mineral fingerprint, organic bands, overtones, aliphatic C-H, O-H / N-H stretch."""
    return [
        Region(name="600-1200 Si-O, Al-OH, carbonate", start=600, stop=1200),
        Region(name="1200-1800 C=O, C=C, amide, carbonate", start=1200, stop=1800),
        Region(name="1800-2800 overtones, carbonate", start=1800, stop=2800),
        Region(name="2800-3000 aliphatic C-H", start=2800, stop=3000),
        Region(name="3000-4000 O-H, N-H, clay OH", start=3000, stop=4000),
    ]


class VAEConfig(StrictModel):
    """The 1-D convolutional spectral VAE and its pretraining on unlabelled spectra (Ray Train)."""

    latent_dim: int = Field(32, ge=2, description="Latent dimension (32, as summarised for SSML).")
    channels: list[int] = Field([16, 32, 64, 64], min_length=1, description="Conv channels, one stride-2 layer each.")
    kernel: int = Field(7, ge=3, description="Convolution kernel size (odd).")
    beta: float = Field(1.0, ge=0, description="Weight of the KL term after warm-up (beta-VAE).")
    kl_warmup_steps: int = Field(200, ge=0, description="Optimiser steps over which the KL weight ramps 0 -> beta.")
    repeat_weight: float = Field(
        1.0, ge=0, description="Weight of the latent distance between two scan repeats of one sample."
    )
    epochs: int = Field(30, ge=1, description="Epochs of pretraining.")
    steps_per_epoch: int | None = Field(None, ge=1, description="Batches per worker per epoch; None: one pass.")
    batch_size: int = Field(64, ge=2, description="Spectra per worker batch.")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=5e-3), description="Optimiser and schedule.")
    holdout_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Samples held out (by id) to report reconstruction error per region."
    )
    run_name: str = Field("spectra-vae", min_length=1, description="Run name: checkpoints under <runs>/<run_name>.")

    @field_validator("kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel {value} must be odd")
        return value


class ConversionConfig(StrictModel):
    """NIR->MIR conversion: a NIR encoder trained into the frozen MIR decoder on paired spectra."""

    latent_weight: float = Field(1.0, ge=0, description="Weight of the distance to the MIR encoder's latent mean.")
    epochs: int = Field(40, ge=1, description="Epochs of conversion training.")
    steps_per_epoch: int | None = Field(None, ge=1, description="Batches per worker per epoch; None: one pass.")
    batch_size: int = Field(32, ge=2, description="Pairs per worker batch.")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=5e-3), description="Optimiser and schedule.")
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5, description="Pairs held out to report the conversion error.")
    run_name: str = Field("spectra-convert", min_length=1, description="Run name under <runs>.")


class DownstreamConfig(StrictModel):
    """The property models compared by ``soilnet spectra evaluate``, on the same folds."""

    k: int = Field(5, ge=2, le=20, description="Cross-validation folds (random, grouped or spatial).")
    seed: int = Field(0, ge=0, description="Seed of folds and models.")
    plsr_max_components: int = Field(30, ge=1, description="PLSR: components tried by the inner CV (1..max).")
    inner_folds: int = Field(5, ge=2, description="Inner CV folds of PLSR components and Cubist committees.")
    pca_components: int = Field(120, ge=1, description="OSSL recipe: PCA components before Cubist.")
    cubist_committees: list[int] = Field([1, 5, 10], min_length=1, description="Cubist committees tried (inner CV).")
    rf_trees: int = Field(300, ge=1, description="Random forest on latents: trees.")
    mlp_hidden: list[int] = Field([64, 64], min_length=1, description="MLP on latents: hidden layer widths.")
    headline: Literal["mlp_latent", "rf_latent"] = Field(
        "mlp_latent", description="The embedding model of the SPECTRA line (fixed in advance, not the best one)."
    )
    n_jobs: int = Field(1, ge=-1, description="Threads of the random forest; -1 for all cores.")


class SpectraConfig(StrictModel):
    """Spectral library, preprocessing, VAE, conversion and downstream models."""

    library: str | None = Field(None, description="Spectral library URL (default: <data.root>/spectra).")
    mir: PreprocessConfig = Field(default_factory=mir_preprocessing, description="MIR preprocessing chain.")
    nir: PreprocessConfig = Field(default_factory=nir_preprocessing, description="NIR preprocessing chain.")
    regions: list[Region] = Field(default_factory=mir_regions, description="MIR regions of the error reports.")
    vae: VAEConfig = Field(default_factory=VAEConfig, description="Spectral VAE pretraining.")
    conversion: ConversionConfig = Field(default_factory=ConversionConfig, description="NIR->MIR conversion.")
    downstream: DownstreamConfig = Field(default_factory=DownstreamConfig, description="Property models.")
