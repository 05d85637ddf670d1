"""The Landsat-8 image of the raster cube: a per-pixel composite following the SoilNet scene rule.

The reference picks one scene per sample location: the earliest winter scene (Jan, Feb, Nov,
Dec) of the target year, else the March-October scene with the lowest mean NDVI, among scenes
whose window around the location has less than 10 % cloud/shadow and less than 10 % snow.

A wall-to-wall tile has no single location, so the rule is applied per pixel, with the
location's window being the ``scene_window_px`` square around each pixel:

1. every scene is scaled (DN * 2.75e-5 - 0.2) and its QA_PIXEL bits give a cloud/shadow flag
   (dilated cloud bit 1, cirrus bit 2, cloud bit 3, shadow bit 4) and a snow flag (bit 5);
2. the window fractions of both flags and the window mean NDVI of clear pixels are box-filter
   means over the window; a scene is usable at a pixel when that pixel is clear and both
   fractions are below their limits;
3. each usable pixel gets a priority: winter scenes ``3 - day_of_year / 366`` (in (2, 3], earlier
   is higher), other scenes ``-mean NDVI`` (in [-1, 1]); ``qualityMosaic`` keeps, per pixel,
   the scene with the highest priority, i.e. the earliest usable winter scene, else the usable
   Mar-Oct scene with the lowest window NDVI.

The 14 bands follow in the reference order: SR_B1..SR_B7, the five normalised-difference
indices of the chosen scene, elevation and slope in percent.

Elevation comes from the Copernicus GLO-30 DEM, which covers every land surface (SRTM ends at 60
degrees N, so Norway, Sweden, Finland, Iceland and northern Russia had none). GLO-30 is a collection
of 1-degree tiles whose longitude spacing widens north of 50 degrees N; the tiles over the region are
mosaicked and given the raster cube's projection and pixel size as their default, so slope is computed
on the cube's own equal-area grid, with one method everywhere: no seam at 60 degrees N or anywhere else.
"""

from __future__ import annotations

import math
from typing import Any

import ee

from soilnet.data.bands import BAND_NAMES, INDEX_BANDS, REFLECTANCE_BANDS

COLLECTION = "LANDSAT/LC08/C02/T1_L2"
DEM = "COPERNICUS/DEM/GLO30"
DEM_BAND = "DEM"
REFLECTANCE_SCALE = 2.75e-5
REFLECTANCE_OFFSET = -0.2
WINTER_MONTHS: tuple[int, ...] = (1, 2, 11, 12)

#: QA_PIXEL bits (Landsat Collection 2): cloud/shadow flags and the snow flag.
QA_DILATED_CLOUD = 1
QA_CIRRUS = 2
QA_CLOUD = 3
QA_CLOUD_SHADOW = 4
QA_SNOW = 5
CLOUD_SHADOW_BITS: tuple[int, ...] = (QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_CLOUD_SHADOW)

#: Priority of a winter scene is WINTER_PRIORITY - day_of_year / 366: always above any -NDVI.
WINTER_PRIORITY = 3.0


def scale_reflectance(image: ee.Image) -> ee.Image:
    """SR_B1..SR_B7 as surface reflectance (Collection 2 Level-2 scale and offset)."""
    reflectance = image.select(list(REFLECTANCE_BANDS)).multiply(REFLECTANCE_SCALE).add(REFLECTANCE_OFFSET)
    return image.addBands(reflectance, None, True)


def qa_flag(image: ee.Image, bits: tuple[int, ...]) -> ee.Image:
    """1 where any of the QA_PIXEL ``bits`` is set, else 0."""
    mask = sum(1 << bit for bit in bits)
    return image.select("QA_PIXEL").bitwiseAnd(mask).neq(0)


def window_mean(image: ee.Image, window_px: int) -> ee.Image:
    """Box-filter mean over the ``window_px`` square around each pixel (masked pixels ignored)."""
    kernel = ee.Kernel.square(radius=window_px // 2, units="pixels")
    return image.reduceNeighborhood(reducer=ee.Reducer.mean(), kernel=kernel, optimization="boxcar")


def scene_priority(image: ee.Image, max_cloud: float, max_snow: float, window_px: int) -> ee.Image:
    """A scaled scene with a ``priority`` band, masked where the scene is not usable (rule above)."""
    scaled = scale_reflectance(image)
    cloudy = qa_flag(image, CLOUD_SHADOW_BITS)
    snow = qa_flag(image, (QA_SNOW,))
    clear = cloudy.Or(snow).Not()
    cloud_fraction = window_mean(cloudy, window_px)
    snow_fraction = window_mean(snow, window_px)
    ndvi = scaled.normalizedDifference(list(INDEX_BANDS["ndvi"])).updateMask(clear)
    ndvi_mean = window_mean(ndvi, window_px)
    usable = clear.And(cloud_fraction.lt(max_cloud)).And(snow_fraction.lt(max_snow))
    date = ee.Date(image.get("system:time_start"))
    is_winter = ee.List(list(WINTER_MONTHS)).contains(date.get("month"))
    winter_rank = ee.Number(WINTER_PRIORITY).subtract(date.getRelative("day", "year").divide(366))
    priority = ee.Image(ee.Algorithms.If(is_winter, ee.Image.constant(winter_rank), ndvi_mean.multiply(-1)))
    priority = priority.rename("priority").toFloat()
    return scaled.select(list(REFLECTANCE_BANDS)).addBands(priority).updateMask(usable)


def scenes(region: dict[str, Any], year: int) -> ee.ImageCollection:
    """Landsat-8 C2 L2 scenes of ``year`` that intersect the region (GeoJSON geometry)."""
    return (
        ee.ImageCollection(COLLECTION)
        .filterBounds(ee.Geometry(region))
        .filterDate(ee.Date.fromYMD(year, 1, 1), ee.Date.fromYMD(year + 1, 1, 1))
    )


def composite(region: dict[str, Any], year: int, max_cloud: float, max_snow: float, window_px: int) -> ee.Image:
    """Per-pixel reflectance SR_B1..SR_B7 of the scene chosen by the scene rule."""
    prepared = scenes(region, year).map(lambda img: scene_priority(img, max_cloud, max_snow, window_px))
    return prepared.qualityMosaic("priority").select(list(REFLECTANCE_BANDS))


def elevation(region: dict[str, Any], crs: str, scale: float) -> ee.Image:
    """GLO-30 elevation (m) over the region: its tiles mosaicked, on ``crs`` at ``scale`` metres by default."""
    tiles = ee.ImageCollection(DEM).filterBounds(ee.Geometry(region)).select(DEM_BAND)
    return tiles.mosaic().setDefaultProjection(crs=crs, scale=scale).rename("elevation")


def terrain(region: dict[str, Any], crs: str, scale: float) -> ee.Image:
    """Elevation (m) and slope in percent (tan of the slope angle x 100), slope taken on the cube's grid."""
    height = elevation(region, crs, scale)
    slope_deg = ee.Terrain.slope(height)
    slope_pct = slope_deg.multiply(math.pi / 180).tan().multiply(100)
    return height.addBands(slope_pct.rename("slope"))


def landsat_image(
    region: dict[str, Any],
    year: int,
    max_cloud: float,
    max_snow: float,
    window_px: int,
    crs: str = "EPSG:3035",
    scale: float = 30.0,
) -> ee.Image:
    """The 14 float32 bands of the raster cube (on ``crs`` at ``scale`` m) in the reference order (`BAND_NAMES`)."""
    reflectance = composite(region, year, max_cloud, max_snow, window_px)
    indices = [reflectance.normalizedDifference(list(pair)).rename(name) for name, pair in INDEX_BANDS.items()]
    image = ee.Image.cat([reflectance, *indices, terrain(region, crs, scale)])
    return image.select(list(BAND_NAMES)).toFloat()
