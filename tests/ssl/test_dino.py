"""DINO: loss on constructed cases, centring, the teacher's EMA and its lack of gradients."""

import math

import pytest
import torch

from soilnet.ssl.dino import DINOHead, DINOLoss, cosine_momentum
from soilnet.ssl.factory import build_objective


def dino_objective(recipe, **dino_update):
    """The tiny DINO objective (optionally with other DINO settings)."""
    tiny = recipe("dino-tiny")
    ssl = tiny.ssl.model_copy(update={"dino": tiny.ssl.dino.model_copy(update=dino_update)})
    d = tiny.data
    return build_objective(ssl, tiny.model, d.n_bands, d.n_climate_vars, d.n_months), tiny


def test_cosine_momentum_schedule() -> None:
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(500, 100, 0.9, 0.99) == pytest.approx(0.99)
    with pytest.raises(ValueError, match="total_steps"):
        cosine_momentum(0, 0, 0.996)


def test_dino_loss_of_uniform_outputs_is_log_out_dim_and_centre_moves() -> None:
    loss_fn = DINOLoss(out_dim=10, center_momentum=0.9)
    student = torch.zeros(4 * 3, 10)  # 4 views x batch 3
    teacher = torch.ones(2 * 3, 10)
    loss = loss_fn(student, teacher, n_crops=4, n_global=2)
    assert loss.item() == pytest.approx(math.log(10))
    torch.testing.assert_close(loss_fn.center, torch.full((1, 10), 0.1))


def test_dino_loss_is_low_when_the_student_matches_a_sharp_teacher() -> None:
    loss_fn = DINOLoss(out_dim=8, teacher_temperature=0.04, student_temperature=0.04)
    targets = torch.eye(8)[torch.tensor([1, 5, 2])]
    teacher = torch.cat([targets, targets])
    matched = loss_fn(torch.cat([targets] * 3), teacher, n_crops=3, n_global=2)
    wrong = loss_fn(torch.cat([targets.roll(1, dims=1)] * 3), teacher, n_crops=3, n_global=2)
    assert matched.item() < 0.01 < 10 < wrong.item()


def test_dino_head_outputs_cosines() -> None:
    head = DINOHead(16, out_dim=32, hidden_dim=24, bottleneck_dim=8)
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 32) and out.abs().max() <= 1 + 1e-6


def test_teacher_gets_no_gradient_and_follows_the_ema(recipe, sample_batch) -> None:
    ssl, tiny = dino_objective(recipe)
    teacher = dict(ssl.image_encoder.named_parameters())
    for name, p in ssl.student_encoder.named_parameters():
        assert torch.equal(p, teacher[name]) and not teacher[name].requires_grad
    image, _ = sample_batch(tiny, batch=4)
    out = ssl(image)
    assert torch.isfinite(out.loss) and 0 < out.embedding_std.item() < 1
    assert "student_embedding_std" in out.extras
    out.loss.backward()
    for p in (*ssl.image_encoder.parameters(), *ssl.teacher_head.parameters()):
        assert p.grad is None
    assert all(p.grad is not None for p in ssl.student_head.parameters())
    with torch.no_grad():
        for p in ssl.student_encoder.parameters():
            p.add_(1.0)
    before = {n: p.clone() for n, p in ssl.image_encoder.named_parameters()}
    student = dict(ssl.student_encoder.named_parameters())
    ssl.after_step(step=0, total_steps=10)  # momentum 0.996 at step 0
    for name, p in ssl.image_encoder.named_parameters():
        expected = 0.996 * before[name] + 0.004 * student[name]
        torch.testing.assert_close(p, expected)


def test_multi_crop_views_and_no_local_crops(recipe, sample_batch) -> None:
    ssl, tiny = dino_objective(recipe)
    image, _ = sample_batch(tiny, batch=3)
    global_crops, local_crops = ssl.crops(image)
    assert global_crops.shape == (2 * 3, 4, 32, 32)
    assert local_crops.shape == (2 * 3, 4, 16, 16)
    only_global, _ = dino_objective(recipe, n_local_crops=0)
    assert only_global.crops(image)[1] is None
    assert torch.isfinite(only_global(image).loss)
