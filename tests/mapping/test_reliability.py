"""A calibrated bundle's map layers: interval bounds, DI and AOA in the cube, COGs, STAC and preview."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from soilnet import storage
from soilnet.evaluation.aoa import fit_aoa, save_aoa
from soilnet.evaluation.conformal import IntervalCalibration, save_calibrations
from soilnet.mapping.config import ModelSourceConfig
from soilnet.mapping.job import map_cube_url, run_map
from soilnet.mapping.map_cube import open_map_cube, units_of
from soilnet.mapping.model_card import read_model_card
from soilnet.mapping.outputs import export_outputs
from soilnet.mapping.reliability import MapReliability, aoa_fraction, interval_layers, load_reliability
from soilnet.recipes.bundle import AOA_FILE, INTERVALS_FILE, save_bundle
from tests.fixtures.tiny_models import tiny_bundle

Q90 = 1.7


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> str:
    """The tiny bundle with a 90 % quantile of 1.7 and an AOA of 16-d embeddings (its head's input width)."""
    url = str(tmp_path_factory.mktemp("calibrated") / "bundle")
    bundle = tiny_bundle()
    meta = bundle.meta.model_copy(update={"intervals": INTERVALS_FILE, "aoa": AOA_FILE})
    save_bundle(url, bundle.recipe, bundle.models, bundle.stats, meta)
    cal = IntervalCalibration([0.9], floor=0.05, quantiles={"90": Q90})
    save_calibrations({"soc_g_kg": cal}, f"{url}/{INTERVALS_FILE}")
    rng = np.random.default_rng(0)
    save_aoa(fit_aoa(rng.normal(scale=0.3, size=(60, 16)), np.arange(60) % 3), f"{url}/{AOA_FILE}")
    return url


def test_layer_names_and_units() -> None:
    assert interval_layers("soc_g_kg", [0.9, 0.5]) == [
        "soc_g_kg_lower_90", "soc_g_kg_upper_90", "soc_g_kg_lower_50", "soc_g_kg_upper_50",
    ]  # fmt: skip
    assert units_of("soc_g_kg_upper_97.5") == "g/kg" and units_of("di") == "1"


def test_tile_layers_by_hand() -> None:
    cal = IntervalCalibration([0.9], floor=0.5, quantiles={"90": 2.0})
    aoa = fit_aoa([[0.0], [1.0], [3.0], [6.0]], [0, 0, 1, 1])  # threshold DI 1.5 (tests/evaluation/test_aoa.py)
    rel = MapReliability(["soc_g_kg", "ph_h2o"], {"soc_g_kg": cal}, aoa)
    assert rel.layers == ["soc_g_kg_lower_90", "soc_g_kg_upper_90", "di", "aoa"]  # pH has no calibration
    mean, std = np.array([[[10.0, 20.0]], [[5.0, 6.0]]]), np.array([[[1.0, 0.1]], [[1.0, 1.0]]])
    bounds = rel.interval_layers(mean, std)
    np.testing.assert_allclose(bounds["soc_g_kg_lower_90"], [[8.0, 19.0]])  # 2 * max(std, 0.5)
    np.testing.assert_allclose(bounds["soc_g_kg_upper_90"], [[12.0, 21.0]])
    layers = rel.aoa_layers(np.array([[4.5], [12.0], [np.nan]]), 1, 3)
    np.testing.assert_allclose(layers["di"], [[0.45, 1.8, np.nan]])
    np.testing.assert_array_equal(layers["aoa"], [[1, 0, 255]])


@pytest.mark.slow
def test_map_of_a_calibrated_bundle(calibrated, map_config, ray_local) -> None:
    cfg = map_config(model=ModelSourceConfig(bundle=calibrated), executor="ray", tile_px=16)
    assert read_model_card(cfg.model).extra_layers == ("soc_g_kg_lower_90", "soc_g_kg_upper_90", "di", "aoa")
    run_map(cfg)
    cube = open_map_cube(map_cube_url(cfg.out))
    mean, std = cube.read("soc_g_kg"), cube.read("soc_g_kg_std")
    valid = np.isfinite(mean)
    assert valid.any() and (~valid).any()
    half = Q90 * np.maximum(std, 0.05)
    np.testing.assert_allclose(cube.read("soc_g_kg_lower_90"), mean - half, rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(cube.read("soc_g_kg_upper_90"), mean + half, rtol=1e-5, equal_nan=True)
    di, aoa = cube.read("di"), cube.read("aoa")
    assert np.isfinite(di[valid]).all() and np.isnan(di[~valid]).all() and (di[valid] >= 0).all()
    assert set(np.unique(aoa[valid])) <= {0, 1} and (aoa[~valid] == 255).all()
    threshold = float(np.load(f"{calibrated}/{AOA_FILE}")["threshold"])
    np.testing.assert_array_equal(aoa[valid] == 1, di[valid] <= threshold)
    assert aoa_fraction(cube, block_px=16) == pytest.approx((aoa == 1).sum() / valid.sum())

    outputs = export_outputs(cfg)
    items = {c.layer: json.loads(Path(f"{cfg.out}/stac/{c.layer}.json").read_text()) for c in outputs.cogs}
    for item in items.values():
        assert item["properties"]["description"] == item["assets"]["data"]["description"] != ""
    assert "nearest training point" in items["di"]["properties"]["description"]
    assert "area of applicability" in items["aoa"]["properties"]["description"]
    band = {k: item["assets"]["data"]["raster:bands"][0] for k, item in items.items()}
    assert band["di"]["scale"] == pytest.approx(1e-3) and band["aoa"] == {**band["aoa"], "nodata": 255}
    assert band["aoa"]["data_type"] == "uint8" and band["soc_g_kg_upper_90"]["unit"] == "g/kg"
    with rasterio.open(f"{cfg.out}/cog/aoa.vrt") as src:
        np.testing.assert_array_equal(src.read(1), aoa)
    assert outputs.preview.endswith("preview.png")


def test_a_calibrated_bundle_on_s3(calibrated, s3_bucket) -> None:
    url = storage.join(s3_bucket, "models/calibrated")
    storage.resolve(url).fs.put(calibrated, storage.resolve(url).path, recursive=True)
    local, remote = load_reliability(calibrated), load_reliability(url)
    assert remote.layers == local.layers == ["soc_g_kg_lower_90", "soc_g_kg_upper_90", "di", "aoa"]
    assert remote.calibrations["soc_g_kg"].quantile(0.9) == Q90 and remote.aoa.threshold == local.aoa.threshold
    assert read_model_card(ModelSourceConfig(bundle=url)).extra_layers == tuple(local.layers)
