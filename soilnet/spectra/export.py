"""Exported spectral models: weights plus a card recording the preprocessing and axis they expect.

A model folder (local or ``s3://``) holds ``weights.safetensors`` and ``card.json``: the kind
(``vae`` or ``converter``), the VAE architecture, and for the input (and, for a converter, the
output) spectra their fidelity, unit, the preprocessing chain and the resulting axis. Spectra are
prepared for a model with the chain of its card, so a model never sees other preprocessing.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.models.checkpoint import load_weights, save_weights
from soilnet.spectra.config import PreprocessConfig, VAEConfig
from soilnet.spectra.library import SpectralLibraryError, SpectralSet
from soilnet.spectra.preprocess import preprocess_set
from soilnet.spectra.vae import ConvEncoder, SpectraConverter, SpectralVAE

WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.json"


class SpectraSpec(StrictModel):
    """What spectra a model reads or writes: fidelity, unit, preprocessing chain and the resulting axis."""

    fidelity: str = Field(description="MIR, NIR or visNIR.")
    unit: str = Field(description="cm-1 or nm.")
    preprocessing: PreprocessConfig = Field(description="The chain applied to library spectra.")
    axis: list[float] = Field(min_length=2, description="Axis after preprocessing (the model's input length).")


class ModelCard(StrictModel):
    """The record stored with an exported spectral model."""

    kind: Literal["vae", "converter"] = Field(description="vae: MIR VAE; converter: NIR encoder + MIR decoder.")
    vae: VAEConfig = Field(description="Architecture and pretraining settings of the VAE.")
    source: SpectraSpec = Field(description="Input spectra.")
    target: SpectraSpec | None = Field(None, description="Converter only: the spectra it outputs (MIR).")
    metrics: dict[str, float] = Field(default_factory=dict, description="Held-out errors at export time.")
    mlflow_run_id: str | None = Field(None, description="The MLflow run that trained it.")


def prepare(spectra: SpectralSet, spec: SpectraSpec) -> SpectralSet:
    """Library spectra preprocessed for a model; a fidelity or axis other than the card's is an error."""
    if spectra.fidelity != spec.fidelity or spectra.unit != spec.unit:
        raise SpectralLibraryError(
            f"the model reads {spec.fidelity} spectra in {spec.unit}, got {spectra.fidelity} in {spectra.unit}"
        )
    out = preprocess_set(spectra, spec.preprocessing)
    if not np.allclose(out.axis, spec.axis):
        raise SpectralLibraryError(
            f"after preprocessing the spectra have {out.axis.size} points ({out.axis[0]:g}-{out.axis[-1]:g}), "
            f"the model expects {len(spec.axis)} ({spec.axis[0]:g}-{spec.axis[-1]:g})"
        )
    return out


def save_model(url: str, module: SpectralVAE | SpectraConverter, card: ModelCard) -> str:
    """Write weights and card under `url`."""
    storage.makedirs(url)
    save_weights(module, storage.join(url, WEIGHTS_FILE))
    with storage.open_file(storage.join(url, CARD_FILE), "w") as handle:
        handle.write(card.model_dump_json(indent=2))
    return url


def read_card(url: str) -> ModelCard:
    """The card of an exported model; errors name the folder."""
    where = storage.join(url, CARD_FILE)
    if not storage.exists(where):
        raise FileNotFoundError(f"{url}: no {CARD_FILE}; is it the output of soilnet spectra pretrain/convert?")
    with storage.open_file(where, "r") as handle:
        return ModelCard.model_validate_json(handle.read())


def vae_module(card: ModelCard) -> SpectralVAE:
    """An untrained VAE of the card's architecture and input length."""
    return SpectralVAE(len(card.source.axis), card.vae)


def converter_module(card: ModelCard) -> SpectraConverter:
    """An untrained converter of the card's architecture and input / output lengths."""
    if card.target is None:
        raise ValueError("a converter card needs a target section")
    vae = card.vae
    encoder = ConvEncoder(len(card.source.axis), vae.channels, vae.kernel, vae.latent_dim)
    return SpectraConverter(encoder, SpectralVAE(len(card.target.axis), vae).decoder)


def load_model(url: str, kind: Literal["vae", "converter"]) -> tuple[SpectralVAE | SpectraConverter, ModelCard]:
    """An exported model in eval mode and its card; the wrong kind is an error naming the folder."""
    card = read_card(url)
    if card.kind != kind:
        raise ValueError(f"{url} holds a {card.kind}, expected a {kind}")
    module = vae_module(card) if kind == "vae" else converter_module(card)
    load_weights(module, storage.join(url, WEIGHTS_FILE))
    return module.eval(), card
