"""Dense prediction over whole tiles and where it agrees with predicting each window alone.

Where they agree:
- `predict_tile` (windows cut in memory, predicted in batches) equals per-window prediction for
  any stride, overlapping or not, for every model: it is the same computation, batched.
- `SoilNetModel.predict_dense` (one encoder pass per tile) equals per-window prediction when the
  tile is one window. On larger tiles each window also sees context outside itself (conv
  receptive fields, GLAM / ViT global attention, interpolated ViT positions), so no agreement
  is claimed there; only shapes and finiteness are checked.
"""

import pytest
import torch

from soilnet.models.dense import cut_windows, predict_tile

RECIPES = ["soilnet-tiny", "ssl-soilnet-tiny"]


def test_cut_windows_layout() -> None:
    tile = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).reshape(2, 1, 6, 8)
    windows = cut_windows(tile, window=4, stride=2)
    assert windows.shape == (2, 2, 3, 1, 4, 4)
    assert torch.equal(windows[1, 1, 2], tile[1, :, 2:6, 4:8])
    with pytest.raises(ValueError, match="smaller than the 8 px window"):
        cut_windows(tile, window=8, stride=8)
    with pytest.raises(ValueError, match="must be positive"):
        cut_windows(tile, window=4, stride=0)


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("stride", [32, 16])
def test_predict_tile_equals_per_window_prediction(name, stride, recipe) -> None:
    tiny = recipe(name)
    d = tiny.data
    model = tiny.build_model().eval()
    tile = torch.rand(2, d.n_bands, 64, 96)
    climate = torch.randn(2, d.n_months, d.n_climate_vars)
    dense = predict_tile(model, tile, climate, window=32, stride=stride, batch_size=5)
    gh, gw = (64 - 32) // stride + 1, (96 - 32) // stride + 1
    assert dense["prediction"].shape == (2, tiny.model.head.n_targets, gh, gw)
    with torch.no_grad():
        for b in range(2):
            for i in range(gh):
                for j in range(gw):
                    window = tile[b : b + 1, :, i * stride : i * stride + 32, j * stride : j * stride + 32]
                    single = model(window, climate[b : b + 1])
                    for key, value in single.items():
                        torch.testing.assert_close(dense[key][b, :, i, j], value[0], atol=1e-5, rtol=1e-4)


def test_predict_tile_accepts_one_climate_series_per_window(recipe) -> None:
    tiny = recipe("soilnet-tiny")
    d = tiny.data
    model = tiny.build_model().eval()
    tile = torch.rand(1, d.n_bands, 32, 64)
    climate = torch.randn(1, 1, 2, d.n_months, d.n_climate_vars)
    dense = predict_tile(model, tile, climate, window=32, stride=32)
    with torch.no_grad():
        right = model(tile[:, :, :, 32:], climate[:, 0, 1])
    torch.testing.assert_close(dense["prediction"][0, :, 0, 1], right["prediction"][0])
    with pytest.raises(ValueError, match="climate must be per tile"):
        predict_tile(model, tile, climate[:, 0], window=32, stride=32)


@pytest.mark.parametrize("name", RECIPES)
def test_one_pass_dense_mode_equals_forward_on_a_single_window(name, recipe, sample_batch) -> None:
    tiny = recipe(name)
    model = tiny.build_model().eval()
    image, climate = sample_batch(tiny)
    with torch.no_grad():
        dense = model.predict_dense(image, climate, window=32, stride=32)
        single = model(image, climate)
    for key, value in single.items():
        assert dense[key].shape == (*value.shape, 1, 1)
        torch.testing.assert_close(dense[key][..., 0, 0], value, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", RECIPES)
def test_one_pass_dense_mode_grid_over_a_larger_tile(name, recipe) -> None:
    tiny = recipe(name)
    d = tiny.data
    model = tiny.build_model().eval()
    tile = torch.rand(1, d.n_bands, 96, 128)
    climate = torch.randn(1, d.n_months, d.n_climate_vars)
    with torch.no_grad():
        dense = model.predict_dense(tile, climate, window=32, stride=32)
    assert dense["prediction"].shape == (1, tiny.model.head.n_targets, 3, 4)
    assert torch.isfinite(dense["prediction"]).all()
    with pytest.raises(ValueError, match="dense stride 12 px must be a positive multiple"):
        model.predict_dense(tile, climate, window=32, stride=12)
    with pytest.raises(ValueError, match="tile 96x100 px must be at least the 32 px window"):
        model.predict_dense(tile[..., :100], climate, window=32, stride=32)
