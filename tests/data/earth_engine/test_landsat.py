"""The Landsat-8 composite is built for real and its computation graph is checked."""

from __future__ import annotations

import json
import math

import pytest

from soilnet.data.bands import BAND_NAMES
from soilnet.data.earth_engine import landsat

REGION = {"type": "Polygon", "coordinates": [[[10.0, 50.0], [11.0, 50.0], [11.0, 51.0], [10.0, 51.0], [10.0, 50.0]]]}
REFLECTANCE = [f"SR_B{i}" for i in range(1, 8)]


@pytest.fixture
def image_graph(ee_api, graph):
    return graph(landsat.landsat_image(REGION, 2018, 0.1, 0.1, 64))


def test_collections_and_year(image_graph, constant) -> None:
    loads = {constant(a["id"]) for a in image_graph.calls("ImageCollection.load")}
    assert loads == {"LANDSAT/LC08/C02/T1_L2", "COPERNICUS/DEM/GLO30"}
    assert image_graph.calls("Image.load") == [], "no single-image DEM (SRTM ends at 60 N)"
    years = sorted({constant(a["year"]) for a in image_graph.calls("Date.fromYMD")})
    assert years == [2018, 2019]
    assert image_graph.calls("Collection.filter"), "scenes must be filtered by region and date"


def test_band_order_and_indices(image_graph, constant) -> None:
    selects = [constant(a["bandSelectors"]) for a in image_graph.calls("Image.select")]
    assert selects[0] == list(BAND_NAMES), "the outermost select fixes the 14 reference bands in order"
    assert len(BAND_NAMES) == 14
    pairs = [constant(a["bandNames"]) for a in image_graph.calls("Image.normalizedDifference")]
    expected = [["SR_B6", "SR_B7"], ["SR_B6", "SR_B5"], ["SR_B4", "SR_B3"], ["SR_B6", "SR_B3"], ["SR_B5", "SR_B4"]]
    for pair in expected:
        assert pair in pairs
    renamed = [constant(a["names"]) for a in image_graph.calls("Image.rename")]
    for name in ("clay", "ferrous", "carbonate", "rock_outcrop", "ndvi", "elevation", "slope"):
        assert [name] in renamed
    assert "Image.toFloat" in image_graph.functions()


def test_scale_and_offset_on_reflectance(image_graph, constant) -> None:
    multiply = [a for a in image_graph.calls("Image.multiply") if "Image.select" in str(a["image1"])]
    scaled = [
        a
        for a in multiply
        if a["image2"]["functionInvocationValue"]["arguments"]["value"] == {"constantValue": 2.75e-5}
    ]
    assert scaled, "SR bands must be multiplied by 2.75e-5"
    assert constant(scaled[0]["image1"]["functionInvocationValue"]["arguments"]["bandSelectors"]) == REFLECTANCE
    offsets = [a["image2"] for a in image_graph.calls("Image.add")]
    assert {
        "functionInvocationValue": {"functionName": "Image.constant", "arguments": {"value": {"constantValue": -0.2}}}
    } in offsets


def test_qa_masks(image_graph, constant) -> None:
    masks = {
        a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"]
        for a in image_graph.calls("Image.bitwiseAnd")
    }
    cloud_shadow = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4)  # dilated cloud, cirrus, cloud, shadow
    assert masks == {cloud_shadow, 1 << 5}
    qa = [a for a in image_graph.calls("Image.select") if constant(a["bandSelectors"]) == ["QA_PIXEL"]]
    assert len(qa) == 1  # one QA_PIXEL band feeds both flags
    assert "Image.updateMask" in image_graph.functions()


def test_each_limit_applies_to_its_flag(ee_api, graph) -> None:
    g = graph(landsat.landsat_image(REGION, 2018, 0.05, 0.2, 50))  # kernel radius 25: no clash with 30 or 32
    limits = {
        a["image2"]["functionInvocationValue"]["arguments"]["value"]["constantValue"]: a for a in g.calls("Image.lt")
    }
    assert set(limits) == {0.05, 0.2}
    cloud_mask = '"constantValue": 30}'
    snow_mask = '"constantValue": 32}'
    assert cloud_mask in str(limits[0.05]).replace("'", '"') and snow_mask not in str(limits[0.05]).replace("'", '"')
    assert snow_mask in str(limits[0.2]).replace("'", '"') and cloud_mask not in str(limits[0.2]).replace("'", '"')


def test_scene_rule_window_and_priority(image_graph, constant) -> None:
    kernels = image_graph.calls("Kernel.square")
    assert {constant(k["radius"]) for k in kernels} == {32}
    assert {constant(k["units"]) for k in kernels} == {"pixels"}
    neighbourhoods = image_graph.calls("Image.reduceNeighborhood")
    assert len(neighbourhoods) == 3  # cloud/shadow fraction, snow fraction, mean NDVI
    assert {constant(n["optimization"]) for n in neighbourhoods} == {"boxcar"}
    assert [constant(a["qualityBand"]) for a in image_graph.calls("ImageCollection.qualityMosaic")] == ["priority"]
    assert [1, 2, 11, 12] in image_graph.constants()
    assert "If" in image_graph.functions()
    # Any winter priority (earliest first) outranks any -NDVI of a Mar-Oct scene.
    assert landsat.WINTER_PRIORITY - 365 / 366 > 1.0


def test_slope_in_percent(image_graph, constant) -> None:
    assert image_graph.calls("Terrain.slope")
    factors = [
        a["image2"]["functionInvocationValue"]["arguments"]["value"] for a in image_graph.calls("Image.multiply")
    ]
    assert {"constantValue": math.pi / 180} in factors
    assert {"constantValue": 100} in factors
    assert image_graph.calls("Image.tan")


def test_no_fill_values(image_graph) -> None:
    assert "Image.unmask" not in image_graph.functions()
    assert -999 not in image_graph.constants()


#: Southern Finland and the Gulf of Bothnia: 58.5 - 61.5 N, across SRTM's northern edge at 60 N.
ACROSS_60N = {
    "type": "Polygon",
    "coordinates": [[[20.0, 58.5], [26.0, 58.5], [26.0, 61.5], [20.0, 61.5], [20.0, 58.5]]],
}
#: The Europe mapping window: Iceland to the Urals, Crete to the North Cape.
EUROPE = {"type": "Polygon", "coordinates": [[[-25.0, 34.0], [45.0, 34.0], [45.0, 71.5], [-25.0, 71.5], [-25.0, 34.0]]]}


@pytest.mark.parametrize("region", [ACROSS_60N, EUROPE], ids=["across-60N", "europe"])
def test_elevation_is_one_glo30_mosaic_over_the_whole_region(ee_api, graph, constant, region) -> None:
    g = graph(landsat.landsat_image(region, 2021, 0.1, 0.1, 64, crs="EPSG:3035", scale=30.0))
    dem_loads = [a for a in g.calls("ImageCollection.load") if constant(a["id"]) == landsat.DEM]
    assert len(dem_loads) == 1
    dem_tiles = [
        a for a in g.calls("Collection.filter") if landsat.DEM in json.dumps(a) and "LANDSAT" not in json.dumps(a)
    ]
    (bounds,) = [a for a in dem_tiles if "Filter.intersects" in json.dumps(a)]
    assert (
        region["coordinates"]
        == bounds["filter"]["functionInvocationValue"]["arguments"]["rightValue"]["functionInvocationValue"][
            "arguments"
        ]["geometry"]["functionInvocationValue"]["arguments"]["coordinates"]["constantValue"]
    )
    (mosaic,) = g.calls("ImageCollection.mosaic")
    assert landsat.DEM in json.dumps(mosaic)
    (default,) = g.calls("Image.setDefaultProjection")
    crs = default["crs"]["functionInvocationValue"]["arguments"]["crs"]
    assert constant(crs) == "EPSG:3035" and constant(default["scale"]) == 30.0
    (slope,) = g.calls("Terrain.slope")
    assert "Image.setDefaultProjection" in json.dumps(slope), "slope is taken on the cube's grid, not per tile"
    dem_selects = [a for a in g.calls("Image.select") if constant(a["bandSelectors"]) == [landsat.DEM_BAND]]
    dem_selects += [a for a in g.calls("Collection.map") if landsat.DEM_BAND in json.dumps(a)]
    assert dem_selects, "the DEM band of the GLO-30 tiles is selected"
    assert "USGS/SRTMGL1_003" not in g.text
