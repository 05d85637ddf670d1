"""The WorldCover land-cover image: excluded classes, aggregation onto the 30 m grid, uint8 bands."""

from __future__ import annotations

from soilnet.data.earth_engine import worldcover
from soilnet.data.grid import Grid


def test_landcover_graph(ee_api, graph, constant) -> None:
    grid = Grid.from_origin(3035, 4_300_000.0, 2_960_000.0, 30.0, 3000, 2000)
    g = graph(worldcover.landcover_image(grid))
    assert [constant(a["id"]) for a in g.calls("ImageCollection.load")] == ["ESA/WorldCover/v200"]
    (remap,) = g.calls("Image.remap")
    assert sorted(constant(remap["from"])) == [50, 70, 80, 90, 95]
    assert constant(remap["to"]) == [1] * 5 and constant(remap["defaultValue"]) == 0
    reducers = {a["reducer"]["functionInvocationValue"]["functionName"] for a in g.calls("Image.reduceResolution")}
    assert reducers == {"Reducer.mode", "Reducer.mean"}
    for call in g.calls("Image.reproject"):
        assert constant(call["crsTransform"]) == list(grid.transform)
        assert call["crs"]["functionInvocationValue"]["arguments"]["crs"] == {"constantValue": "EPSG:3035"}
    assert next(constant(a["names"]) for a in g.calls("Image.rename")) == ["landcover", "landcover_excluded_pct"]
    assert "Image.toUint8" in g.functions() and "Image.unmask" not in g.functions()
    assert worldcover.NODATA not in {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100} and worldcover.NODATA > 100
