"""Contrastive losses and the collapse monitor every SSL loss returns with its value."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossOutput:
    """A loss to backpropagate and its monitors.

    `embedding_std` is the mean per-dimension std of the L2-normalised embeddings across the
    batch: about 1/sqrt(dim) for well spread embeddings, 0 when they collapse to one point.
    `extras` holds further monitors (per-modality stds, ...).
    """

    loss: torch.Tensor
    embedding_std: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Detached float values for logging, keys prefixed with `prefix`."""
        values = {"loss": self.loss, "embedding_std": self.embedding_std, **self.extras}
        return {f"{prefix}{k}": float(v.detach()) for k, v in values.items()}


def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Collapse monitor: mean over dimensions of the batch std of L2-normalised rows (no grad)."""
    with torch.no_grad():
        return F.normalize(z.float(), dim=-1).std(dim=0).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.5, symmetric: bool = True) -> LossOutput:
    """Cross-modal InfoNCE: row i of `a` and row i of `b` are positives, other rows negatives.

    Cosine similarities divided by `temperature`; cross-entropy from `a` to `b`, averaged with
    `b` to `a` when `symmetric` (MISO). Unrelated embeddings give about log(batch size).
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"paired embeddings must both be (batch, dim): {a.shape} vs {b.shape}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, labels))
    std_a, std_b = embedding_std(a), embedding_std(b)
    return LossOutput(loss, torch.minimum(std_a, std_b), {"embedding_std_a": std_a, "embedding_std_b": std_b})


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> LossOutput:
    """SimCLR NT-Xent over 2N views: each view's positive is its pair, the 2N - 2 others negatives.

    Unrelated embeddings give about log(2N - 1).
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"two views must both be (batch, dim): {z1.shape} vs {z2.shape}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return LossOutput(F.cross_entropy(logits, labels), embedding_std(z))
