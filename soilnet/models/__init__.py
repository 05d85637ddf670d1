"""Models: timm image encoders (ResNet + GLAM, ViT), climate encoders, late fusion and heads."""

from soilnet.models.checkpoint import load_weights, save_weights
from soilnet.models.config import ModelConfig
from soilnet.models.factory import build_model, count_parameters

__all__ = ["ModelConfig", "build_model", "count_parameters", "load_weights", "save_weights"]
