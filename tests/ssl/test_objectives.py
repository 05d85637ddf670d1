"""Cross-modal and SimCLR objectives built from the tiny recipes: losses, monitors, gradients."""

import pytest
import torch

from soilnet.ssl.cross_modal import CrossModalObjective
from soilnet.ssl.factory import build_objective
from soilnet.ssl.losses import LossOutput
from soilnet.ssl.simclr import SimCLRObjective


def objective_for(tiny, **ssl_update):
    """The tiny recipe's objective with some SSL settings changed."""
    d = tiny.data
    cfg = tiny.ssl.model_copy(update=ssl_update)
    return build_objective(cfg, tiny.model, d.n_bands, d.n_climate_vars, d.n_months)


def assert_every_trainable_parameter_has_a_gradient(module: torch.nn.Module) -> None:
    """Each parameter that requires grad got a finite gradient; others got none."""
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name


@pytest.mark.parametrize("objective", ["cross_modal", "simclr"])
def test_contrastive_objectives(objective, recipe, sample_batch) -> None:
    tiny = recipe("ssl-soilnet-tiny")
    ssl = objective_for(tiny, objective=objective).train()
    assert isinstance(ssl, CrossModalObjective if objective == "cross_modal" else SimCLRObjective)
    image, climate = sample_batch(tiny, batch=6)
    out = ssl(image, climate)
    assert isinstance(out, LossOutput)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert 0 < out.embedding_std.item() < 1
    out.loss.backward()
    assert_every_trainable_parameter_has_a_gradient(ssl)


def test_cross_modal_needs_climate_and_matching_widths(recipe, sample_batch) -> None:
    tiny = recipe("ssl-soilnet-tiny")
    image, _ = sample_batch(tiny)
    with pytest.raises(ValueError, match="needs climate"):
        objective_for(tiny)(image)
    with pytest.raises(ValueError, match=r"image \(32\) and climate \(16\)"):
        objective_for(tiny, projection_dim=None)
    no_climate = tiny.model.model_copy(update={"climate": None})
    with pytest.raises(ValueError, match=r"needs model\.climate"):
        build_objective(tiny.ssl, no_climate, 5, 3, 12)


def test_pretraining_ignores_the_fine_tuning_freeze(recipe) -> None:
    tiny = recipe("dino-tiny")
    assert tiny.model.image.frozen
    ssl = objective_for(tiny)
    assert any(p.requires_grad for p in ssl.student_encoder.parameters())
