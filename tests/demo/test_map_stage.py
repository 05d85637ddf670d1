"""The demo's map stage: block means and modes, and a published map scored against the true SOC map."""

from pathlib import Path

import numpy as np

from soilnet.demo.map_stage import block_mean, block_mode, map_demo


def test_block_mean_ignores_nan_and_handles_edges() -> None:
    values = np.arange(25, dtype=float).reshape(5, 5)
    values[0, 0] = np.nan
    means = block_mean(values, 2)
    assert means.shape == (3, 3)
    assert means[0, 0] == np.mean([1, 5, 6])
    assert means[2, 2] == 24.0
    assert np.isnan(block_mean(np.full((2, 2), np.nan), 2)).all()


def test_block_mode_is_the_most_frequent_class_ignoring_nan() -> None:
    codes = np.array([[0, 1, 2], [1, 1, np.nan], [np.nan, np.nan, 2]], dtype=float)
    modes = block_mode(codes, 2, 3)
    assert modes.shape == (2, 2)
    assert modes[0, 0] == 1 and modes[0, 1] == 2 and modes[1, 1] == 2
    assert np.isnan(modes[1, 0])


def test_demo_map_is_published_and_scored(tiny_demo, tiny_bundle_url: str, tmp_path: Path) -> None:
    report = map_demo(
        tiny_demo.raster,
        tiny_demo.climate,
        tiny_demo.region,
        tiny_demo.truth,
        str(tmp_path / "map"),
        tiny_bundle_url,
        resolution_m=240,
        executor="local",
    )
    assert report.tiles > 0 and report.cells_scored > 100
    assert set(report.error) >= {"rmse", "r2", "me"} and report.error["rmse"] > 0
    assert Path(report.outputs.preview).stat().st_size > 0
    assert all(Path(c.url).exists() for c in report.outputs.cogs)
    assert report.further == {}  # a one-target bundle maps SOC only
