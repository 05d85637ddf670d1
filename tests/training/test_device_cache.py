"""train.cache_device: the labelled cache cut and normalised on a device equals the NumPy path; no GPU fails clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soilnet.data.normalisation import NormStats, normalise_batch
from soilnet.training.batches import cache_rows
from soilnet.training.config import TrainConfig
from soilnet.training.device_cache import DeviceCache, NoFreeGPUError, resolve_device

NODATA = -32768


def raw_cache(n: int = 40, bands: int = 3, patch: int = 8, months: int = 5, variables: int = 2) -> dict:
    rng = np.random.default_rng(0)
    image = rng.integers(-2000, 9000, (n, bands, patch, patch)).astype(np.int16)
    image[3, 1, :2, :] = NODATA
    image[7] = NODATA
    climate = rng.normal(10, 3, (n, months, variables)).astype(np.float32)
    climate[5, 2, 1] = np.nan
    return {
        "image": image,
        "climate": climate,
        "target": rng.normal(20, 5, n).astype(np.float32),
        "x": rng.uniform(0, 1e5, n),
        "y": rng.uniform(0, 1e5, n),
        "id": np.array([f"p{i}" for i in range(n)]),
        "scale": np.array([1e-4, 1e-4, 0.5]),
        "offset": np.array([0.0, 0.1, -10.0]),
        "nodata": NODATA,
    }


def stats(bands: int = 3, variables: int = 2) -> NormStats:
    return NormStats(
        image_method="minmax",
        bands=[f"b{i}" for i in range(bands)],
        image_center=[0.05, 0.2, 100.0][:bands],
        image_scale=[0.3, 0.5, 2000.0][:bands],
        variables=[f"v{i}" for i in range(variables)],
        climate_mean=[10.0, 9.0][:variables],
        climate_std=[3.0, 2.5][:variables],
        target_mean=0.0,
        target_std=1.0,
        n_rows=10,
    )


@pytest.mark.parametrize("mask_channel", [False, True])
def test_device_batches_equal_the_numpy_path(mask_channel: bool) -> None:
    cache = raw_cache()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    on_device = DeviceCache(cache, stats(), mask_channel, device)
    rows, valid = np.array([3, 7, 0, 39, 3, 12]), np.array([1, 1, 1, 0, 1, 1], dtype=np.float32)
    got = {k: v.cpu().numpy() for k, v in on_device.batch(rows, valid).items()}
    expected = normalise_batch(cache_rows(cache, rows), stats(), mask_channel)
    assert got["image"].shape == expected["image"].shape
    np.testing.assert_allclose(got["image"], expected["image"], rtol=1e-6, atol=1e-6)
    assert (got["image"][1, :3] == 0).all()  # a wholly nodata window is 0 after normalisation
    if mask_channel:
        assert got["image"][1, -1].max() == 0 and got["image"][0, -1, :2].max() == 0 and got["image"][2, -1].min() == 1
    np.testing.assert_allclose(got["climate"], expected["climate"], rtol=1e-6, equal_nan=True)
    for key in ("target", "x", "y"):
        np.testing.assert_array_equal(got[key], expected[key])
    np.testing.assert_array_equal(got["valid"], valid)
    assert len(on_device) == 40


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_cache_without_a_gpu_fails_clearly() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(NoFreeGPUError, match=r"cache_device is 'cuda' but this worker sees no GPU"):
        DeviceCache(raw_cache(), stats(), False, "cuda")


def test_cuda_cache_needs_the_cache_source_and_gpus() -> None:
    assert TrainConfig(cache_device="cuda", use_gpu=True).cache_device == "cuda"
    with pytest.raises(ValueError, match=r"needs train\.data_source=cache"):
        TrainConfig(cache_device="cuda", use_gpu=True, data_source="stream")
    with pytest.raises(ValueError, match=r"train.use_gpu=true \(is False\)"):
        TrainConfig(cache_device="cuda")
