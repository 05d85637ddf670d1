"""The LIIF INR: bilinear blending of the 4 nearest cells, continuous queries, exact and dense tile grids."""

import pytest
import torch
import torch.nn.functional as F

from soilnet.models.inr import LIIF, centre_query, nearest_cells, pixel_queries, shift_windows
from soilnet.models.inr_model import INRSoilModel, query_coordinates
from soilnet.recipes.recipe import RecipeConfig
from tests.fixtures.tiny_models import tiny_miso_recipe_dict


def test_four_cell_weights_are_liif_bilinear_interpolation() -> None:
    features = torch.randn(2, 3, 5, 7)
    queries = torch.rand(2, 40, 2) * 1.4 - 0.7  # inside the outermost cell centres
    cells = nearest_cells(features, queries)
    blended = sum(f * w.unsqueeze(-1) for f, _, w in cells)
    expected = F.grid_sample(features, queries.unsqueeze(1), mode="bilinear", align_corners=False)[:, :, 0]
    assert torch.allclose(blended, expected.transpose(1, 2), atol=1e-5)
    assert torch.allclose(sum(w for _, _, w in cells), torch.ones(2, 40))
    offsets = torch.stack([off for _, off, _ in cells])
    assert offsets.abs().max() <= 1.0 + 1e-5  # in cells: the 4 nearest centres lie within one cell


def test_liif_sums_stages_into_one_embedding_per_query_and_is_continuous() -> None:
    liif = LIIF([4, 6], hidden=8, out_dim=12).eval()
    stages = [torch.randn(1, 4, 8, 8), torch.randn(1, 6, 2, 2)]
    q = torch.tensor([[[0.1, -0.3], [0.1001, -0.3001], [0.9, 0.9]]])
    with torch.no_grad():
        out = liif(stages, q)
    assert out.shape == (1, 3, 12)
    assert (out[0, 0] - out[0, 1]).abs().max() < 1e-2 < (out[0, 0] - out[0, 2]).abs().max()
    with pytest.raises(ValueError, match="2 stages"):
        liif(stages[:1], q)


@pytest.fixture
def model() -> INRSoilModel:
    torch.manual_seed(0)
    return RecipeConfig.model_validate(tiny_miso_recipe_dict()).build_model().eval()


def test_inr_model_predicts_at_any_points_finer_than_the_pixels(model) -> None:
    image, climate = torch.rand(2, 5, 32, 32), torch.randn(2, 12, 3)
    rows = torch.arange(64) / 2 + 0.25  # a 64 x 64 grid of queries in a 32 px window: 2x finer than the pixels
    grid_r, grid_c = torch.meshgrid(rows, rows, indexing="ij")
    queries = pixel_queries(32, grid_r.reshape(-1), grid_c.reshape(-1)).expand(2, -1, -1)
    with torch.no_grad():
        points = model.predict_points(image, climate, queries)["prediction"]
        centre = model(image, climate)["prediction"]
        at_centre = model.predict_points(image, climate, centre_query(32).view(1, 1, 2).expand(2, 1, 2))
    assert points.shape == (2, 64 * 64, 1) and torch.isfinite(points).all()
    assert points.std() > 0  # not one value for the window
    assert torch.allclose(centre, at_centre["prediction"][:, 0])


@pytest.mark.parametrize("stride", [1, 3])
def test_tile_grids_exact_mode_equals_per_window_queries(model, stride) -> None:
    tile = torch.rand(1, 5, 32 + 4 * stride, 32 + 4 * stride)
    with torch.no_grad():
        exact = model.grid_features(tile, 32, stride, dense=False, batch_size=7)
        dense = model.grid_features(tile, 32, stride, dense=True, batch_size=7)
        window = tile[:, :, stride : stride + 32, 2 * stride : 2 * stride + 32]  # output pixel (1, 2)
        point = torch.tensor(32 // 2 + stride / 2 - stride // 2)
        one = model.query_features(window, pixel_queries(32, point, point).view(1, 1, 2))[0, 0]
    assert exact.shape == dense.shape == (25, 16)
    assert torch.allclose(exact[1 * 5 + 2], one, atol=1e-5)
    assert torch.isfinite(dense).all()


def test_query_coordinates_offset_the_sample_by_pixels_north_up(model) -> None:
    location = model.location.model_copy(update={"kind": "grid"})
    xy = torch.tensor([[4_321_000.0, 3_210_000.0]], dtype=torch.float64)
    one_px_right_down = pixel_queries(32, torch.tensor(17.5), torch.tensor(17.5)).view(1, 1, 2)
    queries = torch.cat([centre_query(32).view(1, 1, 2), one_px_right_down], dim=1)
    coords = query_coordinates(xy, queries, 32, location)
    assert torch.allclose(coords, torch.tensor([[4_321_000.0, 3_210_000.0], [4_321_030.0, 3_209_970.0]]).double())
    lonlat = query_coordinates(xy, queries[:, :1], 32, model.location)
    assert torch.allclose(lonlat, torch.tensor([[10.0, 52.0]]).double(), atol=1e-9)


def test_forward_with_location_returns_what_the_contrastive_terms_compare(model) -> None:
    image, climate = torch.rand(3, 5, 32, 32), torch.randn(3, 12, 3)
    xy = torch.tensor([[4_321_000.0, 3_210_000.0]] * 3, dtype=torch.float64)
    out = model.train()(image, climate, None, xy, 4)
    assert out["prediction"].shape == (3, 1)
    assert out["fused"].shape == out["places"].shape == (3, 5, 16)
    assert out["image_embedding"].shape == out["climate_embedding"].shape == (3, 8)


@pytest.mark.parametrize("arch", ["resnet", "vit"])
def test_every_trainable_parameter_gets_a_gradient(arch) -> None:
    """Distributed data parallel waits for a gradient of every trainable parameter: none may be left unused."""
    model = RecipeConfig.model_validate(tiny_miso_recipe_dict(arch)).build_model().train()
    xy = torch.tensor([[4_321_000.0, 3_210_000.0]] * 2, dtype=torch.float64)
    out = model(torch.rand(2, 5, 32, 32), torch.randn(2, 12, 3), None, xy, 3)
    sum(v.sum() for v in out.values()).backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_shift_windows_moves_pixels_and_fills_zeros() -> None:
    image = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    moved = shift_windows(image, torch.tensor([[1, -2], [0, 0]]))
    assert torch.equal(moved[0, 0, 1:, :2], image[0, 0, :3, 2:])
    assert (moved[0, 0, 0] == 0).all() and (moved[0, 0, :, 2:] == 0).all()
    assert torch.equal(moved[1], image[1])


def test_training_jitter_queries_the_labelled_point_where_the_shift_moved_it(model) -> None:
    assert model.jitter_px == 8  # a quarter of the 32 px window
    image, climate = torch.rand(4, 5, 32, 32), torch.randn(4, 12, 3)
    model.train()
    torch.manual_seed(5)
    out = model(image, climate)["prediction"]
    torch.manual_seed(5)
    shifts = torch.randint(-8, 9, (4, 2))
    queries = model.centre_queries(4) + shifts.flip(-1).unsqueeze(1).float() * 2 / 32
    expected = model.predict_points(shift_windows(image, shifts), climate, queries)["prediction"][:, 0]
    assert shifts.abs().sum() > 0 and torch.allclose(out, expected, atol=1e-5)
    model.eval()
    assert torch.equal(model(image, climate)["prediction"], model(image, climate)["prediction"])  # no jitter
