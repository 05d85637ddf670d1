"""Self-supervised objectives: cross-modal InfoNCE, SimCLR and DINO, with collapse monitors."""

from soilnet.ssl.config import SSLConfig
from soilnet.ssl.factory import build_objective
from soilnet.ssl.losses import LossOutput

__all__ = ["LossOutput", "SSLConfig", "build_objective"]
