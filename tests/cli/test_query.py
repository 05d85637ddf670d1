"""soilnet query: every target at arbitrary lon/lat, points grouped by window and each window read once."""

import numpy as np
import pandas as pd
import pytest
import torch
from pyproj import Transformer
from typer.testing import CliRunner

from soilnet.cli.app import app
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.raster_cube import open_raster_cube
from soilnet.mapping.query import group_by_window, predict_points, read_windows
from soilnet.recipes.bundle import load_bundle
from tests.fixtures.tiny_models import save_tiny_inr_bundle


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def inr_bundle(tmp_path_factory) -> str:
    return save_tiny_inr_bundle(str(tmp_path_factory.mktemp("inr") / "bundle"))


def scattered(tiny_demo, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` random lon/lat points inside the demo raster, a few pixels from its edges."""
    grid = open_raster_cube(tiny_demo.raster).grid
    a, _, c, _, e, f = grid.transform
    rng = np.random.default_rng(seed)
    x = c + a * rng.uniform(2, grid.width - 2, n)
    y = f + e * rng.uniform(2, grid.height - 2, n)
    return Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(x, y)


def test_windows_lattice_puts_each_point_near_its_window_centre() -> None:
    row, col = np.array([0.5, 15.9, 16.1, 40.0]), np.array([0.5, 20.0, 20.0, 3.0])
    windows = group_by_window(row, col, 32)
    assert (windows.origins % 16 == 0).all() and len(windows.origins) < 4  # points 1 and 2 share a window
    assert windows.window_of[1] == windows.window_of[2]
    assert np.abs(windows.queries).max() <= 0.5 + 1e-9  # within P / 4 of the centre
    back = windows.origins[windows.window_of] + (windows.queries[:, ::-1] + 1) / 2 * 32
    assert np.allclose(back, np.stack([row, col], axis=1))


def test_grouped_predictions_equal_each_point_alone(tiny_demo, inr_bundle) -> None:
    bundle, raster = load_bundle(inr_bundle), open_raster_cube(tiny_demo.raster)
    climate = open_climate_cube(tiny_demo.climate)
    lon, lat = scattered(tiny_demo, 150)
    mean, std, windows = predict_points(bundle, raster, climate, lon, lat, "2018-06", tile_windows=2)
    assert mean.shape == std.shape == (150, 1) and np.isfinite(mean).all() and (std > 0).all()
    assert len(windows.origins) < 150  # windows shared by several points
    for i in (0, 77, 149):  # a point predicted on its own, in its window, at its exact position
        alone, _, own = predict_points(bundle, raster, climate, lon[i : i + 1], lat[i : i + 1], "2018-06")
        assert np.allclose(alone[0], mean[i], atol=1e-4)
        assert (own.origins[0] == windows.origins[windows.window_of[i]]).all()
        image = read_windows(raster, bundle.meta.bands, own.origins, 32)
        direct = raster.read_window(*own.origins[0], 32, 32)[raster.band_index(bundle.meta.bands)]
        assert np.array_equal(image[0], direct, equal_nan=True)  # cut from a block = read alone
    assert mean.std() > 0


def test_cli_writes_every_target_and_refuses_bad_points(tiny_demo, inr_bundle, tiny_bundle_url, tmp_path) -> None:
    lon, lat = scattered(tiny_demo, 50, seed=1)
    points = tmp_path / "points.csv"
    pd.DataFrame({"id": range(50), "lon": lon, "lat": lat}).to_csv(points, index=False)
    root = ["--set", f"data.root={tiny_demo.root}"]
    for model, out in ((inr_bundle, tmp_path / "inr.parquet"), (tiny_bundle_url, tmp_path / "pooled.csv")):
        args = ["query", "--points", str(points), "--model", model, "--out", str(out), "--climate-end", "2018-06"]
        result = CliRunner().invoke(app, [*args, *root])
        assert result.exit_code == 0, result.output
        table = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        assert list(table.columns) == ["id", "lon", "lat", "soc_g_kg", "soc_g_kg_std"]
        assert np.isfinite(table["soc_g_kg"]).all()
    # The pooled model predicts from the window centred on each point: what the bundle gives for that window.
    bundle, raster = load_bundle(tiny_bundle_url), open_raster_cube(tiny_demo.raster)
    x, y = Transformer.from_crs(4326, raster.grid.epsg, always_xy=True).transform(lon[:1], lat[:1])
    window = raster.read_window_at(x[0], y[0], 32)[raster.band_index(bundle.meta.bands)]
    series = open_climate_cube(tiny_demo.climate).read_series(x, y, raster.grid.epsg, "2018-06", 12)
    variables = [open_climate_cube(tiny_demo.climate).variables.index(v) for v in bundle.meta.climate_variables]
    expected, _ = bundle.predict(window[None], series[:, :, variables])
    assert np.isclose(pd.read_csv(tmp_path / "pooled.csv")["soc_g_kg"][0], expected[0, 0], atol=1e-4)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"lon": [10.0, "x"], "lat": [52.0, 52.0]}).to_csv(bad, index=False)
    result = CliRunner().invoke(app, ["query", "--points", str(bad), "--model", inr_bundle, *root])
    assert result.exit_code == 2 and "row 2" in result.output
