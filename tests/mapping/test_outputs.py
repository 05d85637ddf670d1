"""Published outputs: COGs georeferenced like the grid and valid, STAC items valid, preview, MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from soilnet import storage
from soilnet.mapping.cog import INT16_NODATA, encode_layer, export_cog
from soilnet.mapping.job import map_cube_url, run_map
from soilnet.mapping.map_cube import MISSING_NODATA, open_map_cube
from soilnet.mapping.outputs import export_outputs
from soilnet.mapping.stac import StacValidationError, validate_item


@pytest.fixture(scope="module")
def published(tiny_demo, tiny_model, tmp_path_factory):
    from soilnet.mapping.config import MapConfig

    cfg = MapConfig(
        raster=tiny_demo.raster,
        climate=tiny_demo.climate,
        region=tiny_demo.region,
        out=str(tmp_path_factory.mktemp("published")),
        model=tiny_model,
        climate_end="2018-06",
        resolution_m=240,
        tile_px=8,
        chunk_px=8,
        executor="local",
        cog_blocksize=16,
    )
    run_map(cfg)
    return cfg, export_outputs(cfg)


def test_layers_are_tile_cogs_under_a_mosaic_that_reads_as_the_layer(published) -> None:
    cfg, outputs = published
    cube = open_map_cube(map_cube_url(cfg.out))
    grid = cube.grid
    assert [c.layer for c in outputs.cogs] == ["soc_g_kg", "soc_g_kg_std", "input_missing"]
    for cog in outputs.cogs:
        assert cog.url.endswith(f"cog/{cog.layer}.vrt")
        assert len(cog.tiles) == len(list(grid.tiles(cfg.tile_px))) > 1
        for tile in cog.tiles:
            assert cog_validate(tile.url, quiet=True)[0], tile.url
            with rasterio.open(tile.url) as src:
                assert tuple(src.transform)[:6] == grid.window(tile.row0, tile.col0, 1, 1).transform
                assert (src.height, src.width) == (tile.height, tile.width)
        with rasterio.open(cog.url) as src:
            assert src.crs.to_epsg() == grid.epsg
            assert tuple(src.transform)[:6] == grid.transform
            assert tuple(src.bounds) == grid.bounds
            assert (src.width, src.height) == (grid.width, grid.height)
            values = src.read(1)
            if cog.layer == "input_missing":
                assert src.nodata == MISSING_NODATA and src.dtypes[0] == "uint8"
                assert np.array_equal(values, cube.read("input_missing"))
            else:
                assert src.nodata == INT16_NODATA and src.dtypes[0] == "int16" and src.scales == (0.1,)
                expected = cube.read(cog.layer)
                assert np.array_equal(values == INT16_NODATA, np.isnan(expected))
                ok = ~np.isnan(expected)
                np.testing.assert_allclose(values[ok] * 0.1, expected[ok], atol=0.05 + 1e-6)


def test_overview_holds_the_centre_pixel_of_each_block(published, tmp_path) -> None:
    cfg, _ = published
    cube = open_map_cube(map_cube_url(cfg.out))
    cog = export_cog(cube, "input_missing", str(tmp_path / "cog"), 1.0, 16, tile_px=8, overview_px=5)
    step = cog.overview_step
    assert step == -(-max(cube.grid.height, cube.grid.width) // 5) > 1
    assert cog_validate(cog.overview, quiet=True)[0]
    with rasterio.open(cog.overview) as src:
        expected = cube.read("input_missing")[step // 2 :: step, step // 2 :: step]
        assert np.array_equal(src.read(1), expected)
        assert src.res == (cube.grid.res * step, cube.grid.res * step)
    with rasterio.open(cog.url) as mosaic:
        assert mosaic.overviews(1), "the VRT mosaic uses the overview COG when zoomed out"


def test_stac_items_validate_and_link(published) -> None:
    cfg, outputs = published
    for url, cog in zip(outputs.items, outputs.cogs, strict=True):
        with open(url) as f:
            item = json.load(f)
        validate_item(item)
        assert item["properties"]["proj:code"] == "EPSG:3035"
        assert item["assets"]["data"]["href"] == cog.url
        assert item["assets"]["overview"]["href"] == cog.overview
        assert item["assets"]["data"]["raster:bands"][0]["nodata"] == cog.nodata
        with open(item["assets"]["tiles"]["href"]) as f:
            tiles = json.load(f)
        assert [t["assets"]["data"]["href"] for t in tiles["features"]] == [t.url for t in cog.tiles]
        for tile in tiles["features"]:
            validate_item(tile)
        assert item["properties"]["datetime"].startswith("2018-06-01")
        assert any(link["rel"] == "derived_from" and link["href"] == cfg.model.bundle for link in item["links"])
    item["properties"].pop("proj:shape")
    item["assets"]["data"]["raster:bands"][0]["data_type"] = "int17"
    with pytest.raises(StacValidationError, match=r"'proj:shape' is a required property(.|\n)*'int17'"):
        validate_item(item)
    del item["properties"]["datetime"]
    with pytest.raises(StacValidationError, match=r"properties: .* is not valid"):
        validate_item(item)


def test_preview_is_a_png(published) -> None:
    _, outputs = published
    with storage.open_file(outputs.preview) as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_integer_encoding_rounds_and_keeps_nodata() -> None:
    raw = encode_layer(np.array([12.34, np.nan, -1e9, 1e9]), 0.1)
    assert raw.tolist() == [123, INT16_NODATA, -32767, 32767]


def test_outputs_are_logged_to_mlflow(published, tmp_path) -> None:
    from mlflow import MlflowClient

    cfg, _ = published
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("maps", str(tmp_path / "artifacts"))).info.run_id
    update = {"mlflow_run_id": run_id, "mlflow_tracking_uri": uri, "out": cfg.out}
    outputs = export_outputs(cfg.model_copy(update=update))
    logged = {a.path for a in client.list_artifacts(run_id, "map")}
    assert {"map/soc_g_kg.vrt", "map/soc_g_kg_overview.tif", "map/soc_g_kg.json", "map/preview.png"} <= logged
    assert client.get_run(run_id).data.tags["soilnet.serve"] == f"soilnet serve --map {cfg.out}"
    with open(outputs.items[0]) as f:
        assert {"rel": "via", "href": f"runs:/{run_id}"}.items() <= next(
            link for link in json.load(f)["links"] if link["rel"] == "via"
        ).items()
