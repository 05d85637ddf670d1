"""MISO's geo-contrastive terms: as a pretraining objective, and next to the supervised loss in fine-tuning."""

import math

import pytest
import torch

from soilnet.recipes.recipe import RecipeConfig
from soilnet.ssl.geo_contrastive import GeoContrastiveObjective, geo_contrastive_loss
from soilnet.training.tasks import RegressionTask, SSLTask
from tests.fixtures.tiny_models import tiny_miso_recipe_dict

B = 6


@pytest.fixture
def tiny() -> RecipeConfig:
    return RecipeConfig.model_validate(tiny_miso_recipe_dict())


def batch(n: int = B) -> dict[str, torch.Tensor]:
    """A normalised training batch of windows around sample points 3 km apart (EPSG:3035 metres)."""
    return {
        "image": torch.rand(n, 5, 32, 32),
        "climate": torch.randn(n, 12, 3),
        "target": torch.randn(n),
        "valid": torch.ones(n),
        "x": 4_321_000.0 + 3_000.0 * torch.arange(n, dtype=torch.float64),
        "y": torch.full((n,), 3_210_000.0, dtype=torch.float64),
    }


def test_pretraining_objective_trains_encoders_inr_and_location_not_the_head(tiny) -> None:
    task = SSLTask(tiny)
    objective = task.build()
    assert isinstance(objective, GeoContrastiveObjective) and tiny.ssl.geo.temperature == 0.1
    loss, monitors = task.loss(objective, batch())
    # Untrained embeddings: each InfoNCE term is about log(batch), weighted 0.1 each.
    assert 0.1 * 2 * math.log(B) * 0.5 < loss.item() < 0.1 * 2 * math.log(B) * 2
    assert set(monitors) >= {"nce_image_location", "nce_image_climate", "embedding_std"}
    loss.backward()
    model = objective.model
    for part in (model.image_encoder.backbone.conv1, model.climate_encoder, model.inr, model.location_encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.head.parameters())
    with pytest.raises(ValueError, match="x/y"):
        objective(batch()["image"], batch()["climate"])


def test_padding_rows_stay_out_of_the_contrastive_terms(tiny) -> None:
    model = tiny.build_model().eval()
    full = batch()
    full["valid"][4:] = 0
    part = {k: v[:4] for k, v in full.items()}
    xy = lambda b: torch.stack([b["x"], b["y"]], dim=-1)  # noqa: E731
    torch.manual_seed(1)
    padded = geo_contrastive_loss(model(full["image"], full["climate"], None, xy(full), 3), tiny.ssl.geo, full["valid"])
    torch.manual_seed(1)
    alone = geo_contrastive_loss(model(part["image"], part["climate"], None, xy(part), 3), tiny.ssl.geo)
    assert torch.allclose(padded.loss, alone.loss, atol=1e-5)


def test_finetuning_adds_the_terms_and_supervises_only_the_labelled_centre(tiny) -> None:
    task = RegressionTask(tiny, "mse", 1.0, None, False)
    model = task.build().eval()  # eval: no dropout, so both passes see the same network
    data = batch()
    torch.manual_seed(2)
    total, monitors = task.loss(model, data)
    supervised = ((model(data["image"], data["climate"])["prediction"][:, 0] - data["target"]) ** 2).mean()
    torch.manual_seed(2)
    out = model(data["image"], data["climate"], None, torch.stack([data["x"], data["y"]], -1), tiny.ssl.geo.n_queries)
    contrastive = geo_contrastive_loss(out, tiny.ssl.geo, data["valid"])
    assert torch.allclose(total, supervised + contrastive.loss, atol=1e-5)
    assert {"nce_image_location", "nce_image_climate"} <= set(monitors)
    off = tiny.model_copy(
        update={"ssl": tiny.ssl.model_copy(update={"geo": tiny.ssl.geo.model_copy(update={"in_finetune": False})})}
    )
    plain = RegressionTask(off, "mse", 1.0, None, False)
    assert plain.loss(model, data)[1] == {}
    assert not any(p.requires_grad for p in plain.build().location_encoder.parameters())
