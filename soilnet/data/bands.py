"""Band and climate-variable catalogues: names, order and integer storage encodings."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class BandSpec:
    """How one raster band is named, described and stored as a scaled integer."""

    name: str
    description: str
    units: str
    scale: float
    offset: float = 0.0


REFLECTANCE_BANDS: tuple[str, ...] = tuple(f"SR_B{i}" for i in range(1, 8))

#: Normalised differences of REFERENCE.md: name -> (band a, band b), value (a - b) / (a + b).
INDEX_BANDS: dict[str, tuple[str, str]] = {
    "clay": ("SR_B6", "SR_B7"),
    "ferrous": ("SR_B6", "SR_B5"),
    "carbonate": ("SR_B4", "SR_B3"),
    "rock_outcrop": ("SR_B6", "SR_B3"),
    "ndvi": ("SR_B5", "SR_B4"),
}

_SPECS: list[BandSpec] = [
    *(BandSpec(b, f"Landsat-8 C2 L2 surface reflectance {b}", "1", 1e-4) for b in REFLECTANCE_BANDS),
    *(BandSpec(n, f"normalised difference {a} / {b}", "1", 1e-4) for n, (a, b) in INDEX_BANDS.items()),
    BandSpec("elevation", "SRTM elevation", "m", 0.5),
    BandSpec("slope", "terrain slope", "percent", 0.05),
]

#: The 14 bands in the reference order (SoilNet / SSL-SoilNet).
BANDS: dict[str, BandSpec] = {s.name: s for s in _SPECS}
BAND_NAMES: tuple[str, ...] = tuple(BANDS)

#: TerraClimate monthly variables (REFERENCE.md), name -> units.
CLIMATE_VARIABLES: dict[str, str] = {
    "aet": "mm",
    "def": "mm",
    "pdsi": "1",
    "pet": "mm",
    "pr": "mm",
    "ro": "mm",
    "soil": "mm",
    "srad": "W m-2",
    "swe": "mm",
    "tmmn": "degC",
    "tmmx": "degC",
    "vap": "kPa",
    "vpd": "kPa",
    "vs": "m s-1",
}

#: ESA WorldCover classes excluded from sampling (built-up, snow/ice, water, wetland, mangroves).
EXCLUDED_LANDCOVER: tuple[int, ...] = (50, 70, 80, 90, 95)

#: Storage encoding of a single-band soil property raster (e.g. the demo's true SOC map).
SOC_SPEC = BandSpec("soc_g_kg", "soil organic carbon", "g/kg", 0.01)
#: Storage encodings of the demo's other true maps: pH and class codes (index in the class vocabulary).
TRUTH_SPECS: tuple[BandSpec, ...] = (
    SOC_SPEC,
    BandSpec("ph_h2o", "soil pH in water", "pH", 0.001),
    BandSpec("permafrost", "near-surface permafrost (class code)", "1", 1.0),
    BandSpec("taxonomy_order", "soil taxonomy order (class code)", "1", 1.0),
)

#: Every band soilnet knows how to store, by name.
KNOWN_SPECS: dict[str, BandSpec] = {**BANDS, **{s.name: s for s in TRUTH_SPECS}}
#: A depth suffix (``soc_g_kg_20_50cm``): the band stores like the property without it.
DEPTH_SUFFIX = re.compile(r"_\d+(\.\d+)?_\d+(\.\d+)?cm$")


def band_spec(name: str) -> BandSpec:
    """The storage spec of a known band (or of a known property at a depth); a generic 1e-4 encoding otherwise."""
    known = KNOWN_SPECS.get(name) or KNOWN_SPECS.get(DEPTH_SUFFIX.sub("", name))
    if known is None:
        return BandSpec(name, name, "1", 1e-4)
    return known if known.name == name else BandSpec(name, known.description, known.units, known.scale, known.offset)
