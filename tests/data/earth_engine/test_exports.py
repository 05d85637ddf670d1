"""Per-tile export requests: pixel grid, destination, GeoTIFF options, names."""

from __future__ import annotations

import ee
import pytest

from soilnet.data.earth_engine.exports import FLOAT_NODATA, Destination, build_requests, tile_pixel_grid
from soilnet.data.grid import Grid
from soilnet.data.region import Tile

GRID = Grid.from_origin(3035, 4_300_000.0, 2_960_000.0, 30.0, 3000, 2000)
GCS = Destination("cloud_storage", bucket="soil-bucket", prefix="runs/eu")


def _requests(destination: Destination, tiles: list[Tile]):
    image = ee.Image("USGS/SRTMGL1_003")
    return build_requests(
        "landsat", "2018", image, GRID, tiles, destination, nodata=FLOAT_NODATA, max_pixels=10**9, file_px=2048
    )


def test_tile_pixel_grid_is_the_grid_window() -> None:
    pg = tile_pixel_grid(GRID, Tile(row=0, col=1, row0=0, col0=2048, height=2000, width=952))
    assert pg == {
        "crs": "EPSG:3035",
        "crsTransform": [30.0, 0.0, 4_300_000.0 + 2048 * 30, 0.0, -30.0, 2_960_000.0],
        "dimensions": "952x2000",
    }


def test_cloud_storage_request(ee_api, graph, constant) -> None:
    (req,) = _requests(GCS, [Tile(1, 0, 2048, 0, 512, 2048)])
    assert req.key == "landsat/2018/r0001_c0000"
    assert req.url == "gs://soil-bucket/runs/eu/landsat/2018/r0001_c0000.tif"
    config = dict(req.task.config)
    expression = config.pop("expression")
    assert config == {
        "description": "soilnet_landsat_2018_r0001_c0000",
        "fileExportOptions": {
            "fileFormat": "GEO_TIFF",
            "cloudStorageDestination": {"bucket": "soil-bucket", "filenamePrefix": "runs/eu/landsat/2018/r0001_c0000"},
            "geoTiffOptions": {
                "cloudOptimized": True,
                "noData": {"floatValue": FLOAT_NODATA},
                "tileDimensions": {"width": 2048, "height": 2048},
            },
        },
        "maxPixels": {"value": "1000000000"},
    }
    g = graph(expression)
    (clip,) = g.calls("Image.clipToBoundsAndScale")
    rect = clip["geometry"]["functionInvocationValue"]["arguments"]
    assert constant(rect["coordinates"]) == [0, 0, 2048, 512]  # the tile rectangle in its own pixel grid
    assert constant(rect["geodesic"]) is False
    (reproject,) = g.calls("Image.reproject")
    assert reproject["crs"]["functionInvocationValue"]["arguments"]["crs"] == {"constantValue": "EPSG:3035"}
    assert constant(reproject["crsTransform"]) == [30.0, 0.0, 4_300_000.0, 0.0, -30.0, 2_960_000.0 - 2048 * 30]


def test_drive_request(ee_api) -> None:
    (req,) = _requests(Destination("drive", folder="soilnet-tiles"), [Tile(0, 0, 0, 0, 2000, 2048)])
    dest = req.task.config["fileExportOptions"]["driveDestination"]
    assert dest == {"folder": "soilnet-tiles", "filenamePrefix": "landsat_2018_r0000_c0000"}
    assert req.url == "gdrive://soilnet-tiles/landsat_2018_r0000_c0000.tif"


def test_requests_are_unstarted_and_one_per_tile(ee_api) -> None:
    tiles = [Tile(0, 0, 0, 0, 2000, 2048), Tile(0, 1, 0, 2048, 2000, 952)]
    requests = _requests(GCS, tiles)
    assert [r.key for r in requests] == ["landsat/2018/r0000_c0000", "landsat/2018/r0000_c0001"]
    assert all(r.task.state == ee.batch.Task.State.UNSUBMITTED and r.task.id is None for r in requests)


def test_bad_tile_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="grid size must be positive"):
        tile_pixel_grid(GRID, Tile(0, 0, 0, 0, 0, 2048))
