"""Save and load model weights at a URL (local path or s3://) as safetensors or a torch state dict.

Pickled code is never executed: safetensors files hold tensors only and other files are read
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import logging
import os

import safetensors.torch
import torch
from torch import nn

from soilnet import storage

log = logging.getLogger(__name__)


def read_state_dict(url: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors stored at `url`: safetensors when the name ends in .safetensors, else torch."""
    url = os.fspath(url)
    with storage.open_file(url, "rb") as handle:
        payload = handle.read()
    if url.endswith(".safetensors"):
        return safetensors.torch.load(payload)
    state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{url}: not a state dict of tensors")
    return state


def save_weights(model: nn.Module, url: str | os.PathLike[str]) -> None:
    """Write the model's state dict to `url` in safetensors format."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = safetensors.torch.save(tensors)
    with storage.open_file(url, "wb") as handle:
        handle.write(payload)
    log.info("saved %d tensors to %s", len(tensors), os.fspath(url))


def load_weights(model: nn.Module, url: str | os.PathLike[str], strict: bool = True) -> None:
    """Load a state dict from `url` into `model`; with `strict`, keys must match exactly."""
    state = read_state_dict(url)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shapes differ
        raise ValueError(f"{os.fspath(url)}: weights do not fit the model: {exc}") from exc
    if strict and (result.missing_keys or result.unexpected_keys):
        raise ValueError(
            f"{os.fspath(url)}: weights do not fit the model; missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    log.info("loaded %d tensors from %s", len(state), os.fspath(url))
