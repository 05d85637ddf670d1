"""The tile predictor with INR models: each output pixel predicted from the INR embedding at its centre."""

import numpy as np
import pytest
import torch

from soilnet.data.normalisation import normalise_batch
from soilnet.mapping.ensemble import Ensemble
from soilnet.models.inr import pixel_queries
from soilnet.recipes.bundle import load_bundle
from tests.fixtures.tiny_models import save_tiny_inr_bundle


@pytest.fixture(scope="module")
def inr_ensemble(tmp_path_factory) -> Ensemble:
    torch.set_num_threads(1)
    bundle = load_bundle(save_tiny_inr_bundle(str(tmp_path_factory.mktemp("inr") / "bundle")))
    return Ensemble(list(bundle.models), bundle.stats, 32, 12, target_scaling=bundle.target_scaling())


@pytest.mark.parametrize("stride", [1, 2])
def test_inr_maps_every_output_pixel_at_its_centre(inr_ensemble, stride) -> None:
    rng = np.random.default_rng(0)
    h = w = 3
    image = rng.uniform(0, 1, (5, (h - 1) * stride + 32, (w - 1) * stride + 32)).astype(np.float32)
    series = rng.normal(20, 5, (1, 12, 3)).astype(np.float32)
    index = np.zeros((h, w), dtype=np.int64)
    exact = inr_ensemble.predict_tile(image, series, index, stride, "windows", 4)[0]
    dense = inr_ensemble.predict_tile(image, series, index, stride, "dense", 4)[0]
    assert exact.shape == dense.shape == (1, h, w) and np.isfinite(dense).all()
    # Output pixel (1, 2): its window starts at (stride, 2 * stride); its centre is the query.
    window = image[None, :, stride : stride + 32, 2 * stride : 2 * stride + 32]
    batch = normalise_batch({"image": window, "climate": series}, inr_ensemble.stats)
    centre = torch.tensor(16 + stride / 2 - stride // 2)
    query = pixel_queries(32, centre, centre).view(1, 1, 2)
    expected = []
    with torch.no_grad():
        for model, (shift, scale) in zip(inr_ensemble.models, inr_ensemble.target_scaling, strict=True):
            out = model.predict_points(torch.from_numpy(batch["image"]), torch.from_numpy(batch["climate"]), query)
            expected.append(float(out["prediction"][0, 0, 0]) * scale + shift)
    assert np.isclose(exact[0, 1, 2], np.mean(expected), atol=1e-4)
