"""The TerraClimate image of the climate cube: one band per variable and month, physical units.

Bands are named ``<variable>_<YYYY-MM>``, month-major (all variables of the first month, then
the next month). Stored integers are multiplied by each variable's scale factor; nothing is
unmasked or replaced, so true zeros (swe, ro, def) stay zeros and masked pixels stay masked.
"""

from __future__ import annotations

import datetime as dt

import ee

from soilnet.data.bands import CLIMATE_VARIABLES

COLLECTION = "IDAHO_EPSCOR/TERRACLIMATE"

#: Scale factors of the Earth Engine catalogue (value = stored integer x scale).
SCALES: dict[str, float] = {
    "aet": 0.1,
    "def": 0.1,
    "pdsi": 0.01,
    "pet": 0.1,
    "pr": 1.0,
    "ro": 1.0,
    "soil": 0.1,
    "srad": 0.1,
    "swe": 1.0,
    "tmmn": 0.1,
    "tmmx": 0.1,
    "vap": 0.001,
    "vpd": 0.01,
    "vs": 0.01,
}
VARIABLES: tuple[str, ...] = tuple(CLIMATE_VARIABLES)


def climate_months(end: dt.date, count: int) -> list[str]:
    """``count`` consecutive months as ``YYYY-MM``, the last being the month of ``end``."""
    last = end.year * 12 + end.month - 1
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(last - count + 1, last + 1)]


def band_names(months: list[str]) -> list[str]:
    """Export band names, month-major: ``aet_2013-06, def_2013-06, ..., vs_2018-06``."""
    return [f"{var}_{month}" for month in months for var in VARIABLES]


def scale_variables(image: ee.Image) -> ee.Image:
    """The 14 variables of one monthly image in physical units."""
    scales = ee.Image.constant([SCALES[v] for v in VARIABLES])
    return image.select(list(VARIABLES)).multiply(scales).rename(list(VARIABLES))


def climate_image(end: dt.date, count: int) -> ee.Image:
    """The multi-band float32 climate image of ``count`` months ending at the month of ``end``."""
    months = climate_months(end, count)
    first = ee.Date(f"{months[0]}-01")
    stop = ee.Date(f"{months[-1]}-01").advance(1, "month")
    series = ee.ImageCollection(COLLECTION).filterDate(first, stop).sort("system:time_start")
    return series.map(scale_variables).toBands().rename(band_names(months)).toFloat()
