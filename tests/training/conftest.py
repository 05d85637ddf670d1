"""Fixtures of the training tests: a tiny recipe, a local-Ray-sized training config."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_RECIPE = """
name: tiny
data: {n_bands: 14, patch_px: 16, n_climate_vars: 14, n_months: 6}
model:
  image: {arch: vit, timm_name: vit_tiny_patch16_224, img_size: 16, patch_size: 8, embed_dim: 16, depth: 1,
          num_heads: 2}
  climate: {kind: gru, hidden_size: 8, num_layers: 1, pooling: mean}
  branch_dim: 8
  head: {hidden: [8]}
ssl: {objective: cross_modal, projection_dim: 8, projection_hidden: [8]}
"""


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> str:
    """Path of a tiny ViT + GRU recipe with a cross-modal SSL section."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return str(path)
