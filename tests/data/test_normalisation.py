"""Normalisation statistics come from the training rows only, round-trip as JSON and fill gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.bands import BAND_NAMES, CLIMATE_VARIABLES
from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.folds import FoldConfig, fold_split
from soilnet.data.locations import labelled_locations
from soilnet.data.normalisation import NormStats, fit_normalisation, load_stats, normalise_batch, save_stats
from soilnet.data.raster_cube import RasterLayout
from soilnet.data.stream import SampleReader

BANDS, VARS = list(BAND_NAMES), list(CLIMATE_VARIABLES)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("norm"))
    paths = generate_demo_region(
        DemoConfig(width_km=6, height_km=6, n_points=40), root, layout=RasterLayout(inner_chunk=32, shard=128)
    )
    table = labelled_locations(pd.read_parquet(paths.points), "soc_g_kg", FoldConfig(k=3))
    reader = SampleReader(paths.raster, paths.climate, patch_px=16, months=61, output="decoded")
    split = fold_split(table["fold"], 0, table["x"], table["y"], 0.2)
    return table, reader, split


def test_statistics_ignore_test_rows(setup):
    table, reader, split = setup
    stats = fit_normalisation(table.iloc[split.train], reader, BANDS, VARS)
    # Changing every test row (targets, dates, positions) cannot change statistics fitted on training rows.
    changed = table.copy()
    changed.loc[split.test, "target"] = 1e6
    changed.loc[split.test, ["x", "y"]] = table.loc[split.train[:1], ["x", "y"]].to_numpy()
    assert fit_normalisation(changed.iloc[split.train], reader, BANDS, VARS) == stats
    everything = fit_normalisation(changed, reader, BANDS, VARS)
    assert everything.target_mean != stats.target_mean  # the check above could fail
    np.testing.assert_allclose(stats.target_mean, table["target"].iloc[split.train].mean(), rtol=1e-6)
    assert stats.n_rows == len(split.train)
    assert all(s > 0 for s in stats.image_scale) and all(s > 0 for s in stats.climate_std)


def test_normalise_fills_gaps_and_adds_mask_channel(setup):
    table, reader, split = setup
    stats = fit_normalisation(table.iloc[split.train], reader, BANDS, VARS, method="standard")
    batch = reader({c: table[c].to_numpy()[:4] for c in table.columns})
    batch["image"][0, 0, 0, 0] = np.nan
    out = normalise_batch(batch, stats, mask_channel=True)
    assert out["image"].shape == (4, 15, 16, 16) and np.isfinite(out["image"]).all()
    assert out["image"][0, 0, 0, 0] == 0 and out["image"][0, -1, 0, 0] == 0 and out["image"][1, -1].min() in (0, 1)
    expected = (batch["image"][1, 3, 5, 5] - stats.image_center[3]) / stats.image_scale[3]
    if np.isfinite(expected):
        np.testing.assert_allclose(out["image"][1, 3, 5, 5], expected, rtol=1e-5)
    np.testing.assert_allclose(
        out["climate"][2, 7], (batch["climate"][2, 7] - stats.climate_mean) / np.array(stats.climate_std), atol=5e-3
    )
    with pytest.raises(ValueError, match="15 channels, the statistics are for 14 bands"):
        normalise_batch(out, stats)


def test_stats_round_trip_and_bad_file(setup, tmp_path):
    table, reader, split = setup
    stats = fit_normalisation(table.iloc[split.train], reader, BANDS, VARS, max_rows=8)
    url = str(tmp_path / "norm.json")
    save_stats(stats, url)
    assert load_stats(url) == stats and stats.n_rows == 8
    (tmp_path / "bad.json").write_text('{"bands": []}')
    with pytest.raises(ValueError, match=r"bad\.json: not valid normalisation statistics"):
        load_stats(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="empty table"):
        fit_normalisation(table.iloc[:0], reader, BANDS, VARS)
    assert isinstance(stats, NormStats)
