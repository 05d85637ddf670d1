"""Class maps (contract C1): class code, probabilities and entropy layers, in the map cube, COGs, STAC, preview."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from soilnet.data.zarr_group import CubeValidationError, mark_complete
from soilnet.mapping import classes as cl
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.map_cube import create_map_cube, ensure_map_cube, map_cube_url, open_map_cube
from soilnet.mapping.outputs import export_outputs
from soilnet.mapping.preview import layer_preview
from tests.fixtures.map_outputs import map_fields, map_grid

ORDERS = ["Gelisols", "Inceptisols", "Entisols", "Spodosols"]


def test_class_layers_of_hand_worked_probabilities():
    p = np.array([[[0.7, 0.5, np.nan]], [[0.3, 0.5, 0.2]]])  # (K=2, h=1, w=3); pixel 2 nodata
    layers = cl.class_layers("permafrost", ["no", "yes"], p)
    assert list(layers) == ["permafrost", "permafrost_p_no", "permafrost_p_yes", "permafrost_entropy"]
    assert layers["permafrost"].dtype == np.uint8
    np.testing.assert_array_equal(layers["permafrost"], [[0, 0, cl.CLASS_NODATA]])  # a tie: the lowest code
    np.testing.assert_allclose(layers["permafrost_p_yes"], [[0.3, 0.5, np.nan]], rtol=1e-6)
    expected = -(0.7 * np.log(0.7) + 0.3 * np.log(0.3))
    np.testing.assert_allclose(layers["permafrost_entropy"], [[expected, np.log(2), np.nan]], rtol=1e-6)
    certain = cl.class_layers("t", ORDERS, np.eye(4)[:, :, None])
    np.testing.assert_array_equal(certain["t_entropy"], 0.0)
    np.testing.assert_array_equal(certain["t"][:, 0], [0, 1, 2, 3])


def test_layer_names_and_labels():
    assert cl.class_layer_names("soil order", ["Gelisols", "Histosols (organic)"])[1:] == [
        "soil order_p_Gelisols",
        "soil order_p_Histosols_organic",
        "soil order_entropy",
    ]
    with pytest.raises(ValueError, match="same layer name twice"):
        cl.class_layer_names("t", ["a b", "a-b", "a_b"])
    with pytest.raises(ValueError, match="2 to 254 classes"):
        cl.class_layer_names("t", ["only"])
    with pytest.raises(ValueError, match=r"must be \(2, h, w\)"):
        cl.class_layers("t", ["a", "b"], np.zeros((3, 2, 2)))
    for n in (2, 4, 15, 30):
        assert len(set(cl.class_colours([str(k) for k in range(n)]))) == n


def _class_map(out: str):
    """A map cube of soc_g_kg (continuous) and taxonomy_order (4 classes), written and marked complete."""
    grid = map_grid(32, 16)
    cube = create_map_cube(map_cube_url(out), grid, ["soc_g_kg", "taxonomy_order"], 16, {}, {"taxonomy_order": ORDERS})
    mean, std, missing = map_fields(grid)
    cube.write_tile(0, 0, mean[None], std[None], missing)
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    logits = np.stack([np.sin(cols / 5.0 + k) + 0.1 * k * rows / grid.height for k in range(4)])
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    p[:, np.isnan(mean)] = np.nan
    cube.write_layers(0, 0, cl.class_layers("taxonomy_order", ORDERS, p))
    mark_complete(cube.group)
    return cube, p


def test_map_cube_holds_class_layers(tmp_path):
    cube, p = _class_map(str(tmp_path / "map"))
    again = open_map_cube(cube.url)
    assert again.classes == {"taxonomy_order": ORDERS}
    assert again.continuous == ["soc_g_kg"]
    assert again.layers == [
        "soc_g_kg",
        "soc_g_kg_std",
        "taxonomy_order",
        *(f"taxonomy_order_p_{label}" for label in ORDERS),
        "taxonomy_order_entropy",
        "input_missing",
    ]
    codes = again.read("taxonomy_order")
    nodata = np.isnan(p[0])
    np.testing.assert_array_equal(codes[~nodata], p.argmax(axis=0)[~nodata])
    assert (codes[nodata] == cl.CLASS_NODATA).all()
    np.testing.assert_allclose(again.read("taxonomy_order_p_Entisols"), p[2], rtol=1e-6)
    assert again.arrays["taxonomy_order"].attrs["flag_meanings"] == " ".join(ORDERS)
    with pytest.raises(CubeValidationError, match="other settings \\(classes\\)"):
        ensure_map_cube(cube.url, cube.grid, cube.targets, 16, {}, False, {"taxonomy_order": ORDERS[::-1]})
    with pytest.raises(ValueError, match="no layer\\(s\\) \\['taxonomy_order_p_Mollisols'\\]"):
        cube.write_layers(0, 0, {"taxonomy_order_p_Mollisols": p[0]})


def test_class_layers_are_published_with_colour_table_stac_classes_and_preview(tmp_path):
    out = str(tmp_path / "map")
    cube, p = _class_map(out)
    cfg = MapConfig(
        raster="unused://raster",
        climate="unused://climate",
        out=out,
        model=ModelSourceConfig(bundle="models:/soilnet@champion"),
        climate_end="2018-06",
        resolution_m=cube.grid.res,
        tile_px=16,
        chunk_px=16,
        cog_blocksize=16,
    )
    outputs = export_outputs(cfg)
    cogs = {c.layer: c for c in outputs.cogs}
    assert list(cogs) == cube.layers
    colours = cl.colour_table(ORDERS)
    for url in (cogs["taxonomy_order"].url, cogs["taxonomy_order"].tiles[0].url, cogs["taxonomy_order"].overview):
        with rasterio.open(url) as src:  # the VRT mosaic, a tile COG and the overview
            assert src.dtypes[0] == "uint8" and src.nodata == cl.CLASS_NODATA
            table = src.colormap(1)
            assert all(table[k] == colours[k] for k in range(len(ORDERS)))
    with rasterio.open(cogs["taxonomy_order"].url) as src:
        np.testing.assert_array_equal(src.read(1), cube.read("taxonomy_order"))
    with rasterio.open(cogs["taxonomy_order_p_Gelisols"].url) as src:
        assert src.dtypes[0] == "int16" and src.scales == (cl.PROBABILITY_SCALE,)
        stored = src.read(1).astype(np.float64) * cl.PROBABILITY_SCALE
        ok = ~np.isnan(p[0])
        np.testing.assert_allclose(stored[ok], p[0][ok], atol=cl.PROBABILITY_SCALE)
    with open(f"{out}/stac/taxonomy_order.json") as f:
        item = json.load(f)
    classes = item["assets"]["data"]["classification:classes"]
    assert [c["value"] for c in classes] == [0, 1, 2, 3, cl.CLASS_NODATA]
    assert [c["title"] for c in classes[:4]] == ORDERS and classes[-1]["nodata"] is True
    assert classes[0]["color_hint"] == cl.class_colours(ORDERS)[0].upper()
    with open(f"{out}/stac/taxonomy_order_p_Gelisols.json") as f:
        assert "classification:classes" not in json.load(f)["assets"]["data"]
    with open(f"{out}/stac/tiles/taxonomy_order.json") as f:
        assert json.load(f)["features"][0]["assets"]["data"]["classification:classes"] == classes
    png = layer_preview(open_map_cube(map_cube_url(out)), "taxonomy_order", str(tmp_path / "classes.png"))
    pixels = {tuple(px) for px in np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3).tolist()}
    shown = {colours[int(k)][:3] for k in np.unique(cube.read("taxonomy_order")) if k != cl.CLASS_NODATA}
    assert shown <= pixels


def test_map_job_writes_class_layers_equal_to_the_bundle(map_config, tmp_path):
    from soilnet.mapping.job import run_map
    from soilnet.recipes.bundle import BundleMeta, ModelBundle, load_bundle, save_bundle
    from soilnet.recipes.recipe import RecipeConfig
    from tests.fixtures.tiny_models import tiny_bundle, tiny_recipe_dict
    from tests.mapping.test_job import window_inputs

    recipe = tiny_recipe_dict()
    recipe["model"]["head"]["n_targets"] = 3  # soc_g_kg, then the two logits of permafrost
    recipe = RecipeConfig.model_validate(recipe)
    models = []
    for k in range(2):
        torch.manual_seed(k)
        models.append(recipe.build_model().eval())
    tiny = tiny_bundle()
    meta = BundleMeta.model_validate(
        {
            **tiny.meta.model_dump(),
            "targets": ["soc_g_kg", "permafrost"],
            "units": ["g/kg", ""],
            "kinds": ["continuous", "binary"],
            "classes": {"permafrost": ["no", "yes"]},
            "target_scaling": [([25.0, 0.0, 0.0], [10.0, 1.0, 1.0])] * 2,
        }
    )
    url = save_bundle(str(tmp_path / "bundle"), recipe, models, tiny.stats, meta)
    cfg = map_config(model=ModelSourceConfig(bundle=url), targets=["soc_g_kg", "permafrost"], tile_px=16)
    cube = open_map_cube(run_map(cfg).map_url)
    assert cube.classes == {"permafrost": ["no", "yes"]}
    bundle: ModelBundle = load_bundle(url)
    images, series, shape = window_inputs(cfg, bundle)
    expected = bundle.predict_outputs(images, series)
    proba = expected["permafrost"]["probabilities"].reshape(*shape, 2)
    got = cube.read("permafrost_p_yes")
    valid = np.isfinite(got)
    assert valid.mean() > 0.9
    np.testing.assert_allclose(got[valid], proba[..., 1][valid], atol=1e-5)
    np.testing.assert_allclose(cube.read("soc_g_kg")[valid], expected["soc_g_kg"]["mean"].reshape(shape)[valid],
                               rtol=1e-5, atol=1e-4)  # fmt: skip
    codes = cube.read("permafrost")
    np.testing.assert_array_equal(codes[valid], proba.argmax(axis=-1)[valid])
    assert (codes[~valid] == cl.CLASS_NODATA).all() and np.isnan(cube.read("permafrost_entropy")[~valid]).all()
