"""The spectral VAE, its tasks and batches without Ray: shapes, positives, KL warm-up, the frozen MIR decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soilnet.spectra.batches import SpectraBatches
from soilnet.spectra.config import ConversionConfig, VAEConfig
from soilnet.spectra.tasks import ConversionTask, SpectralVAETask
from soilnet.training.config import OptimConfig

CFG = VAEConfig(latent_dim=4, channels=[4, 8], kernel=5, beta=0.5, kl_warmup_steps=10)


def test_encoder_decoder_shapes_for_odd_lengths() -> None:
    task = SpectralVAETask(101, CFG)
    vae = task.build()
    out = vae(torch.randn(3, 101), torch.randn(3, 101))
    assert out["recon"].shape == (3, 101)
    assert out["mean"].shape == out["positive_mean"].shape == (3, 4)
    vae.eval()
    assert torch.equal(vae.embed(torch.ones(2, 101)), vae(torch.ones(2, 101))["mean"])


def test_feed_pairs_two_different_repeats_of_one_sample() -> None:
    views = np.stack([np.full((3, 5), 10.0 * i) + np.arange(3)[:, None] for i in range(6)]).astype(np.float32)
    counts = np.array([3, 3, 2, 1, 3, 2])
    feed = SpectraBatches({"views": views, "counts": counts, "mir": np.arange(6, dtype=np.float32)[:, None]}, 4, 0)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for rank in (0, 1):
        for batch in feed.batches(epoch=0, steps=3, rank=rank, world=2):
            sample = (batch["spectrum"][:, 0] // 10).long()
            repeat_a, repeat_b = batch["spectrum"][:, 0] % 10, batch["positive"][:, 0] % 10
            assert torch.equal(sample, (batch["positive"][:, 0] // 10).long())  # same sample
            assert torch.equal(batch["mir"][:, 0].long(), sample)  # extras follow the row
            several = torch.from_numpy(counts)[sample] > 1
            assert torch.all(repeat_a[several] != repeat_b[several])  # a real second scan where there is one
            seen[rank] |= set(sample.tolist())
    assert seen[0] | seen[1] == set(range(6)) and not seen[0] & seen[1]  # workers split the epoch
    again = next(feed.batches(epoch=0, steps=1, rank=1, world=2))
    assert torch.equal(again["spectrum"], next(feed.batches(epoch=0, steps=1, rank=1, world=2))["spectrum"])


def test_kl_warm_up_ramps_to_beta_and_loss_parts_are_finite() -> None:
    task = SpectralVAETask(64, CFG)
    vae = task.build()
    batch = {"spectrum": torch.randn(5, 64), "positive": torch.randn(5, 64), "valid": torch.ones(5)}
    loss, monitors = task.loss(vae, batch)
    assert monitors["kl_weight"] == 0.0 and torch.isfinite(loss)
    task.after_step(vae, 5, 100)
    assert float(vae.kl_weight) == pytest.approx(0.25)
    task.after_step(vae, 50, 100)
    loss, monitors = task.loss(vae, batch)
    assert monitors["kl_weight"] == pytest.approx(0.5)
    expected = monitors["recon_mse"] + 0.5 * monitors["kl_per_point"] + monitors["repeat_distance"]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)


def test_padding_rows_weigh_nothing() -> None:
    task = SpectralVAETask(32, CFG)
    vae = task.build().eval()
    real = {"spectrum": torch.randn(2, 32), "positive": torch.randn(2, 32), "valid": torch.ones(2)}
    padded = {k: torch.cat([v, v[:1] * 50]) for k, v in real.items()}
    padded["valid"] = torch.tensor([1.0, 1.0, 0.0])
    assert float(task.loss(vae, padded)[0]) == pytest.approx(float(task.loss(vae, real)[0]), rel=1e-5)


def test_conversion_trains_the_nir_encoder_and_never_the_mir_decoder() -> None:
    mir_task = SpectralVAETask(40, CFG)
    decoder_state = {k: v.clone() for k, v in mir_task.build().decoder.state_dict().items()}
    task = ConversionTask(30, CFG, decoder_state, 40, ConversionConfig(latent_weight=1.0))
    module = task.build().train()
    assert not module.decoder.training
    optimizer = torch.optim.AdamW(task.param_groups(module, OptimConfig(lr=1e-2)))
    batch = {
        "spectrum": torch.randn(4, 30),
        "mir": torch.randn(4, 40),
        "mir_latent": torch.randn(4, 4),
        "valid": torch.ones(4),
    }
    encoder_before = {k: v.clone() for k, v in module.encoder.state_dict().items()}
    loss, monitors = task.loss(module, batch)
    loss.backward()
    optimizer.step()
    assert set(monitors) == {"conversion_mse", "latent_distance"}
    for key, value in module.decoder.state_dict().items():
        assert torch.equal(value, decoder_state[key]), key
    assert any(not torch.equal(v, encoder_before[k]) for k, v in module.encoder.state_dict().items())
