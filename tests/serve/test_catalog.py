"""Finding a map's layers: from its STAC items, a catalog, a multi-asset item (new layers appear by
themselves), or its raster folder alone; clear errors for what is not a map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from soilnet.serve.app import Viewer
from soilnet.serve.catalog import CatalogError, find_sources, sources_from_map, sources_from_stac
from soilnet.serve.config import ServeConfig
from tests.fixtures.map_outputs import map_fields

LAYERS = ["soc_g_kg", "soc_g_kg_std", "input_missing"]


def test_map_folder_layers_come_from_its_stac_items(published_map) -> None:
    sources = sources_from_map(published_map.out)
    assert sorted(s.name for s in sources) == sorted(LAYERS)
    for s in sources:
        assert s.url == published_map.cog(s.name)
        assert s.unit == ("1" if s.name == "input_missing" else "g/kg")


def write_aoa_item(folder: Path, grid) -> Path:
    """An item with two data assets, as a later map job may publish: ``di`` (float) and ``aoa`` (0/1)."""
    mean, _, _ = map_fields(grid)
    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "crs": CRS.from_epsg(grid.epsg),
        "transform": grid.affine,
    }  # fmt: skip
    di = np.where(np.isnan(mean), np.nan, mean / 40).astype(np.float32)
    aoa = np.where(np.isnan(mean), 255, di < 0.6).astype(np.uint8)
    with rasterio.open(folder / "di.tif", "w", **profile, dtype="float32", nodata=np.nan) as dst:
        dst.write(di, 1)
    with rasterio.open(folder / "aoa.tif", "w", **profile, dtype="uint8", nodata=255) as dst:
        dst.write(aoa, 1)
    band = {"data_type": "float32", "unit": "1"}
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "aoa",
        "geometry": None,
        "properties": {"datetime": "2018-06-01T00:00:00Z"},
        "links": [],
        "assets": {
            "di": {"href": "di.tif", "roles": ["data"], "description": "dissimilarity index", "raster:bands": [band]},
            "aoa": {
                "href": "./aoa.tif",
                "roles": ["data"],
                "classification:classes": [
                    {"value": 0, "description": "outside"},
                    {"value": 1, "description": "inside"},
                ],
            },
        },
    }
    path = folder / "aoa.json"
    path.write_text(json.dumps(item))
    return path


def test_new_layers_appear_without_changes(published_map, tmp_path: Path) -> None:
    stac = tmp_path / "stac"
    shutil.copytree(Path(published_map.out) / "stac", stac)
    write_aoa_item(stac, published_map.grid)
    viewer = Viewer.load(ServeConfig(stac=str(stac)))
    assert list(viewer.layers) == ["di", "soc_g_kg", "soc_g_kg_std", "aoa", "input_missing"]
    di, aoa = viewer.layers["di"], viewer.layers["aoa"]
    assert di.kind == "continuous" and di.colormap == "magma" and di.source.description == "dissimilarity index"
    assert aoa.kind == "classes" and set(aoa.classes) == {0, 1}
    assert [c["label"] for c in aoa.to_json()["classes"]] == ["outside", "inside"]
    assert aoa.source.url == str(stac / "aoa.tif")


def test_a_catalog_links_its_items(published_map, tmp_path: Path) -> None:
    items = sorted((Path(published_map.out) / "stac").glob("*.json"))
    catalog = {
        "type": "Catalog",
        "id": "maps",
        "stac_version": "1.1.0",
        "description": "test",
        "links": [{"rel": "item", "href": str(p)} for p in items] + [{"rel": "root", "href": "./catalog.json"}],
    }
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    assert sorted(s.name for s in sources_from_stac(str(tmp_path / "catalog.json"))) == sorted(LAYERS)


def test_a_map_folder_without_stac_uses_its_rasters(published_map, tmp_path: Path) -> None:
    shutil.copytree(Path(published_map.out) / "cog", tmp_path / "cog")
    sources = sources_from_map(str(tmp_path))
    assert sorted(s.name for s in sources) == sorted(LAYERS)
    assert all(s.url.endswith(".vrt") for s in sources)
    assert {s.name: s.unit for s in sources}["soc_g_kg_std"] == "g/kg"


def test_what_is_not_a_map_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"no stac/\*\.json and no cog/"):
        find_sources(str(tmp_path), None)
    (tmp_path / "feature.json").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(CatalogError, match=r"feature\.json: not a STAC item"):
        find_sources(None, str(tmp_path / "feature.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CatalogError, match=r"bad\.json: not valid JSON"):
        find_sources(None, str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="exactly one of 'map'"):
        ServeConfig(map="a", stac="b")
