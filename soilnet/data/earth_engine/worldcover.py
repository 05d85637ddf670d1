"""The land-cover image of the raster cube: ESA WorldCover v200 on the 30 m grid.

Two uint8 bands: ``landcover``, the most frequent WorldCover class of the 10 m pixels in each
grid cell, and ``landcover_excluded_pct``, the percentage of those 10 m pixels in an excluded
class (built-up 50, snow/ice 70, water 80, herbaceous wetland 90, mangroves 95). Sampling
drops a patch where the excluded share is too large; pixels without WorldCover data are masked
and written as `NODATA` (255), which is neither a class nor a percentage.
"""

from __future__ import annotations

import ee

from soilnet.data.bands import EXCLUDED_LANDCOVER
from soilnet.data.grid import Grid

COLLECTION = "ESA/WorldCover/v200"
BANDS: tuple[str, ...] = ("landcover", "landcover_excluded_pct")
NODATA = 255
#: Most 10 m input pixels one output cell may aggregate (30 m / 10 m = 9, with margin for reprojection).
MAX_INPUT_PIXELS = 64


def landcover_image(grid: Grid) -> ee.Image:
    """WorldCover classes and excluded-class percentage aggregated onto ``grid``'s pixels."""
    classes = ee.ImageCollection(COLLECTION).first().select("Map")
    excluded = classes.remap(list(EXCLUDED_LANDCOVER), [1] * len(EXCLUDED_LANDCOVER), 0)
    projection = {"crs": grid.crs, "crsTransform": list(grid.transform)}
    majority = classes.reduceResolution(reducer=ee.Reducer.mode(), maxPixels=MAX_INPUT_PIXELS).reproject(**projection)
    share = excluded.reduceResolution(reducer=ee.Reducer.mean(), maxPixels=MAX_INPUT_PIXELS).reproject(**projection)
    image = majority.addBands(share.multiply(100).round())
    return image.rename(list(BANDS)).toUint8()
