"""The generated demo region: a raster cube, a climate cube, a true SOC map and sample points.

Everything is a pure function of map position and seed (see `soilnet.data.noise`), generated
and written one shard-sized tile at a time, so the region can be as large as a continent
without memory growing with its size. The soil organic carbon field depends on

- the pixel's own values (greenness, elevation, wetness, which also darken bare soil),
- its spatial context (mean greenness and forest share within ~1 km),
- and climate (mean temperature and precipitation of its TerraClimate cell),

plus sampling noise of a known, recorded standard deviation, so the demo can show that
context-aware models beat centre-pixel ones, and map error can be measured.

Further targets (contract C1), each with its true map in ``truth.zarr`` (bands after ``soc_g_kg``),
their point labels drawn from random streams of their own, so the SOC values stay those of
earlier versions for the same seed:

- ``ph_h2o``: acid under forest context, in wet and rainy places and with much organic matter;
- ``permafrost`` (binary, labels ``no`` / ``yes``): where a frost index of elevation, mean
  temperature and wetness (organic layers insulate) passes a threshold;
- ``taxonomy_order`` (4 classes): Gelisols on permafrost, else Histosols where SOC is very high,
  else Spodosols where the topsoil is acid, else Inceptisols;
- with ``subsoil_cm`` set (e.g. [20, 50]), a second row per point at that depth with SOC and pH of
  the subsoil (``soc_g_kg_<top>_<bottom>cm``, ``ph_h2o_<top>_<bottom>cm`` true maps); its class
  columns are missing (site properties are recorded on the topsoil row).

Class labels are flipped to another class with probability ``class_label_noise``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field
from pyproj import Transformer
from scipy.ndimage import uniform_filter

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.data.bands import BAND_NAMES, CLIMATE_VARIABLES, INDEX_BANDS, REFLECTANCE_BANDS, TRUTH_SPECS
from soilnet.data.climate_cube import (
    ClimateLayout,
    create_climate_cube,
    finish_climate_cube,
    month_starts,
    write_climate_block,
)
from soilnet.data.grid import Grid
from soilnet.data.noise import fbm, value_noise
from soilnet.data.points import write_points
from soilnet.data.raster_cube import RasterLayout, create_raster_cube
from soilnet.data.targets import output_name
from soilnet.progress import progress

log = logging.getLogger(__name__)

#: ESA WorldCover classes used by the generator and their surface reflectance B1..B7.
SPECTRA: dict[int, tuple[float, ...]] = {
    10: (0.020, 0.030, 0.050, 0.030, 0.300, 0.150, 0.070),  # tree cover
    30: (0.030, 0.040, 0.070, 0.060, 0.280, 0.200, 0.110),  # grassland
    40: (0.040, 0.050, 0.080, 0.080, 0.250, 0.240, 0.150),  # cropland
    50: (0.100, 0.110, 0.130, 0.150, 0.180, 0.200, 0.180),  # built-up
    60: (0.080, 0.100, 0.140, 0.180, 0.240, 0.300, 0.250),  # bare / sparse
    80: (0.040, 0.040, 0.050, 0.030, 0.020, 0.010, 0.005),  # water
}
NO_SOIL = (50, 80)
CONTEXT_RADIUS_PX = 16  # ~1 km window at 30 m
CONTEXT_RADIUS_M = CONTEXT_RADIUS_PX * 30.0
#: Topsoil interval of every demo point (cm).
TOPSOIL_CM = (0.0, 20.0)
#: Class vocabularies of the demo's class columns (class code = index).
PERMAFROST_CLASSES = ("no", "yes")
TAXONOMY_ORDERS = ("Gelisols", "Histosols", "Inceptisols", "Spodosols")
#: Frost index above which the ground is permafrost (about a quarter of the default region).
PERMAFROST_THRESHOLD = 0.55
#: SOC (g/kg) above which a soil is a Histosol; topsoil pH below which it is a Spodosol (default region:
#: about 28 % Gelisols, 14 % Histosols, 12 % Spodosols, 46 % Inceptisols).
HISTOSOL_SOC_G_KG = 29.0
SPODOSOL_PH = 6.5


class DemoConfig(StrictModel):
    """Parameters of the generated demo region (all recorded in the cubes' attributes)."""

    width_km: float = Field(30.0, gt=0, description="East-west extent of the region in km.")
    height_km: float = Field(30.0, gt=0, description="North-south extent of the region in km.")
    resolution_m: float = Field(30.0, gt=0, le=1000, description="Pixel size of the raster cube in metres.")
    epsg: int = Field(3035, description="Equal-area CRS of the raster cube (3035 Europe, 5070 CONUS).")
    west: float = Field(4_200_000.0, description="West edge of the region in the cube CRS (m).")
    north: float = Field(3_000_000.0, description="North edge of the region in the cube CRS (m).")
    seed: int = Field(0, ge=0, description="Seed of every random field and of the sample locations.")
    n_points: int = Field(2000, ge=10, description="Number of labelled soil samples to draw.")
    noise_std_g_kg: float = Field(3.0, ge=0, description="Std of the sampling noise added to SOC targets (g/kg).")
    ph_noise_std: float = Field(0.2, ge=0, description="Std of the sampling noise added to pH targets.")
    class_label_noise: float = Field(
        0.05, ge=0, lt=0.5, description="Probability that a point's class label is flipped to another class."
    )
    subsoil_cm: tuple[float, float] | None = Field(
        None,
        description="A second depth interval [top, bottom] (cm) sampled at every point, below the 0-20 cm topsoil "
        "(e.g. [20, 50]); None: topsoil rows only.",
    )
    cloud_cover: float = Field(0.04, ge=0, lt=0.9, description="Approximate fraction of pixels under cloud (nodata).")
    climate_res_deg: float = Field(1 / 24, gt=0, description="Climate grid cell size in degrees (TerraClimate: 1/24).")
    first_month: str = Field("2013-01", description="First month of the climate series (YYYY-MM).")
    months: int = Field(72, ge=61, description="Length of the climate series in months (>= 61).")
    sample_year: int = Field(2018, description="Year the soil samples were taken.")
    min_patch_px: int = Field(64, ge=8, description="Smallest training patch; the region must hold one.")
    map_resolution_m: float = Field(
        240.0, gt=0, description="Pixel size of the demo's map (a multiple of resolution_m)."
    )


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo region's parts are written under its root URL."""

    root: str

    @property
    def raster(self) -> str:
        return storage.join(self.root, "raster.zarr")

    @property
    def climate(self) -> str:
        return storage.join(self.root, "climate.zarr")

    @property
    def truth(self) -> str:
        return storage.join(self.root, "truth.zarr")

    @property
    def points(self) -> str:
        return storage.join(self.root, "points.parquet")

    @property
    def region(self) -> str:
        return storage.join(self.root, "region.geojson")


def demo_grid(cfg: DemoConfig) -> Grid:
    """The raster grid of the demo region; errors if it cannot hold one training patch."""
    width = round(cfg.width_km * 1000 / cfg.resolution_m)
    height = round(cfg.height_km * 1000 / cfg.resolution_m)
    if min(width, height) < cfg.min_patch_px:
        raise ValueError(
            f"demo region of {width} x {height} px is too small for one {cfg.min_patch_px} px patch "
            f"(width_km={cfg.width_km}, height_km={cfg.height_km}, resolution_m={cfg.resolution_m})"
        )
    return Grid.from_origin(cfg.epsg, cfg.west, cfg.north, cfg.resolution_m, width, height)


class Fields:
    """The latent surface fields as functions of global pixel position (row, col)."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.px = 30.0 / cfg.resolution_m  # feature sizes are defined in 30 m pixels

    def _n(self, rows: np.ndarray, cols: np.ndarray, cell_px30: float, salt: int, octaves: int = 4) -> np.ndarray:
        return fbm(rows, cols, cell_px30 * self.px, self.cfg.seed * 1000 + salt, octaves)

    def elevation(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Elevation in metres."""
        return 350.0 + 300.0 * self._n(rows, cols, 600, 1, 5) + 60.0 * self._n(rows, cols, 60, 2, 2)

    def wetness(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Soil wetness in [0, 1], higher in low-lying areas."""
        low = np.clip((350.0 - self.elevation(rows, cols)) / 300.0, -1, 1)
        return np.clip(0.5 + 0.35 * low + 0.3 * self._n(rows, cols, 120, 3), 0, 1)

    def greenness(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Vegetation vigour in [0, 1]."""
        coarse, fine = self._n(rows, cols, 150, 4, 3), self._n(rows, cols, 10, 7, 2)
        return np.clip(0.55 + 0.3 * coarse + 0.35 * fine, 0, 1)

    def landcover(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """WorldCover classes from elevation, wetness, greenness and an urban field."""
        elev, wet, green = self.elevation(rows, cols), self.wetness(rows, cols), self.greenness(rows, cols)
        urban = self._n(rows, cols, 150, 5, 3)
        lc = np.full(elev.shape, 30, dtype=np.uint8)
        lc[green < 0.45] = 40
        lc[green > 0.7] = 10
        lc[(elev > 620) & (green < 0.5)] = 60
        lc[urban > 0.42] = 50
        lc[(wet > 0.78) & (elev < 230)] = 80
        return lc

    def frost_patches(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Local variation of the frost index (snow drift, aspect) in [-1, 1], ~6 km features."""
        return self._n(rows, cols, 200, 8, 3)

    def cloud(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """True where the scene is cloudy (the Landsat bands and indices are nodata)."""
        if self.cfg.cloud_cover <= 0:
            return np.zeros(np.broadcast_shapes(np.shape(rows), np.shape(cols)), dtype=bool)
        threshold = 1.0 - 2.6 * self.cfg.cloud_cover
        return value_noise(rows, cols, 90 * self.px, self.cfg.seed * 1000 + 6) > threshold


class ClimateModel:
    """Monthly TerraClimate-like variables from latitude, elevation and season."""

    def __init__(self, cfg: DemoConfig, fields: Fields, grid: Grid) -> None:
        self.cfg, self.fields, self.grid = cfg, fields, grid
        self.times = month_starts(cfg.first_month, cfg.months)
        rng = np.random.default_rng(cfg.seed + 17)
        n_years = cfg.months // 12 + 2
        self.temp_anomaly = rng.normal(0, 0.8, n_years)
        self.precip_anomaly = rng.normal(1.0, 0.15, n_years)

    def _elevation_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        a, _, c, _, e, f = self.grid.transform
        return self.fields.elevation((y - f) / e, (x - c) / a)

    def normals(self, x: np.ndarray, y: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean annual temperature (degC) and precipitation (mm/month) at raster-CRS points."""
        elev = self._elevation_at(x, y)
        temp = 14.0 - 0.55 * (lat - 45.0) - 0.0065 * elev
        precip = 45.0 + 0.06 * elev + 8.0 * np.cos(np.radians(lat) * 7)
        return temp, precip

    def series(self, x: np.ndarray, y: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """(variable, time, *shape) monthly values for the points."""
        temp0, precip0 = self.normals(x, y, lat)
        t = np.arange(self.cfg.months)
        month = self.times.astype("datetime64[M]").astype(np.int64) % 12
        year = t // 12
        season = np.cos(2 * np.pi * (month - 6.5) / 12)[:, None]
        tmean = temp0.ravel()[None] + 9.0 * season + self.temp_anomaly[year][:, None]
        pr = np.maximum(precip0.ravel()[None] * self.precip_anomaly[year][:, None] * (1 + 0.35 * -season), 0)
        tmax, tmin = tmean + 5.0, tmean - 5.0
        pet = np.maximum(0.0, 6.0 * np.maximum(tmean, 0) + 10 * season + 5)
        aet = np.minimum(pet, pr * 0.9)
        deficit = np.maximum(pet - aet, 0.0)
        snow = np.where(tmean < 0, pr * np.minimum(-tmean / 3, 1), 0.0)
        swe = np.cumsum(snow, axis=0) * (tmean < 0)
        ro = np.maximum(pr - aet - 30.0, 0.0)
        soil = np.clip(150 + 2 * (pr - pet), 0, 400)
        vap = 0.6 + 0.05 * np.maximum(tmean, -10)
        vpd = np.maximum(0.0, 0.1 + 0.04 * tmean)
        values = {
            "aet": aet, "def": deficit, "pdsi": (pr - pet) / 40.0, "pet": pet, "pr": pr, "ro": ro,
            "soil": soil, "srad": 150 + 90 * season + 0 * tmean, "swe": swe, "tmmn": tmin, "tmmx": tmax,
            "vap": vap, "vpd": vpd, "vs": 3.0 + 0.5 * np.cos(np.radians(lat.ravel()))[None] + 0 * tmean,
        }  # fmt: skip
        shape = np.shape(x)
        return np.stack([values[v].reshape(len(t), *shape) for v in CLIMATE_VARIABLES]).astype(np.float32)


def soc_field(
    green: np.ndarray, forest_ctx: np.ndarray, green_ctx: np.ndarray, wet: np.ndarray, elev: np.ndarray,
    temp: np.ndarray, precip: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Soil organic carbon (g/kg) from pixel, context (~1 km) and climate drivers."""
    log_soc = (
        2.9
        + 0.2 * (green - 0.5)
        + 1.6 * (green_ctx - 0.5)
        + 0.9 * forest_ctx
        + 0.6 * (wet - 0.5)
        + 0.0006 * (elev - 350)
        - 0.06 * (temp - 9.0)
        + 0.006 * (precip - 70.0)
    )
    return np.exp(log_soc)


def ph_field(
    soc: np.ndarray, forest_ctx: np.ndarray, wet: np.ndarray, temp: np.ndarray, precip: np.ndarray
) -> np.ndarray:  # fmt: skip
    """Topsoil pH in water: acid under forest context, when wet or rainy and with much organic matter."""
    ph = (
        7.0
        - 2.5 * forest_ctx
        - 2.0 * (wet - 0.5)
        - 0.04 * (precip - 75.0)
        + 0.1 * (temp - 9.0)
        - 0.8 * np.log(np.maximum(soc, 0.1) / 20.0)
    )
    return np.clip(ph, 3.5, 9.0)


def subsoil_fields(
    soc: np.ndarray, ph: np.ndarray, wet: np.ndarray, forest_ctx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """SOC (g/kg) and pH of the subsoil: less carbon (less loss where wet), less acid (more so under forest)."""
    return soc * (0.35 + 0.3 * wet), np.clip(ph + 0.3 + 0.25 * forest_ctx, 3.5, 9.5)


def permafrost_field(elev: np.ndarray, temp: np.ndarray, wet: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """Permafrost class code (0 no, 1 yes): a frost index of elevation, mean temperature and wetness."""
    frost = 0.006 * (elev - 350.0) - 0.8 * (temp - 9.0) + 0.8 * (wet - 0.5) + 0.3 * patches
    return (frost > PERMAFROST_THRESHOLD).astype(np.float64)


def taxonomy_field(permafrost: np.ndarray, soc: np.ndarray, ph: np.ndarray) -> np.ndarray:
    """Taxonomy order code (index in `TAXONOMY_ORDERS`): Gelisols, Histosols, Spodosols, else Inceptisols."""
    order = np.full(np.shape(soc), TAXONOMY_ORDERS.index("Inceptisols"), dtype=np.float64)
    order[ph < SPODOSOL_PH] = TAXONOMY_ORDERS.index("Spodosols")
    order[soc > HISTOSOL_SOC_G_KG] = TAXONOMY_ORDERS.index("Histosols")
    order[permafrost > 0] = TAXONOMY_ORDERS.index("Gelisols")
    return order


def truth_bands(cfg: DemoConfig) -> list[str]:
    """The true maps of ``truth.zarr`` in band order: topsoil properties and classes, then the subsoil's."""
    names = [s.name for s in TRUTH_SPECS]
    if cfg.subsoil_cm is not None:
        names += [output_name(c, cfg.subsoil_cm) for c in ("soc_g_kg", "ph_h2o")]
    return names


def reflectance(lc: np.ndarray, green: np.ndarray, soc: np.ndarray, speckle: np.ndarray) -> np.ndarray:
    """(7, h, w) surface reflectance from class spectra, greenness, SOC darkening and sensor noise."""
    spectra = np.zeros((7, *lc.shape), dtype=np.float64)
    for cls, spec in SPECTRA.items():
        spectra[:, lc == cls] = np.asarray(spec)[:, None]
    vegetated = np.isin(lc, (10, 30, 40))
    spectra[4] *= np.where(vegetated, 0.7 + 0.6 * green, 1.0)
    spectra[3] *= np.where(vegetated, 1.25 - 0.5 * green, 1.0)
    soil_exposure = np.where(np.isin(lc, (40, 60)), 1.0 - 0.6 * green, 0.2)
    darkening = 1.0 - soil_exposure * 0.35 * np.clip(np.nan_to_num(soc) / 100.0, 0, 1)
    spectra *= darkening[None]
    spectra += speckle
    return np.clip(spectra, 0.001, 1.0)


def indices(sr: np.ndarray) -> np.ndarray:
    """(5, h, w) normalised-difference indices of REFERENCE.md from (7, h, w) reflectance."""
    idx = {b: i for i, b in enumerate(REFLECTANCE_BANDS)}
    out = []
    for a, b in INDEX_BANDS.values():
        num, den = sr[idx[a]] - sr[idx[b]], sr[idx[a]] + sr[idx[b]]
        out.append(np.where(den != 0, num / np.where(den == 0, 1, den), 0.0))
    return np.stack(out)


def slope_percent(elev: np.ndarray, res: float) -> np.ndarray:
    """Slope in percent from an elevation array with a 1-pixel halo (result is 2 px smaller)."""
    dzdx = (elev[1:-1, 2:] - elev[1:-1, :-2]) / (2 * res)
    dzdy = (elev[2:, 1:-1] - elev[:-2, 1:-1]) / (2 * res)
    return 100.0 * np.hypot(dzdx, dzdy)


@dataclass
class TileResult:
    """One generated tile: the 14 bands, land cover, true SOC, cloud mask and every true map by name."""

    bands: np.ndarray
    landcover: np.ndarray
    soc: np.ndarray
    cloud: np.ndarray
    truth: dict[str, np.ndarray]


class DemoGenerator:
    """Generates the demo region tile by tile."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.grid = demo_grid(cfg)
        self.fields = Fields(cfg)
        self.climate = ClimateModel(cfg, self.fields, self.grid)
        self.to_lonlat = Transformer.from_crs(cfg.epsg, 4326, always_xy=True)
        self.halo = max(1, round(CONTEXT_RADIUS_M / cfg.resolution_m))

    def climate_normals_at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normals of the TerraClimate cell holding each raster-CRS point (nearest cell)."""
        lon, lat = self.to_lonlat.transform(x, y)
        res = self.cfg.climate_res_deg
        lon_c, lat_c = (np.floor(lon / res) + 0.5) * res, (np.floor(lat / res) + 0.5) * res
        xc, yc = Transformer.from_crs(4326, self.cfg.epsg, always_xy=True).transform(lon_c, lat_c)
        return self.climate.normals(np.asarray(xc), np.asarray(yc), lat_c)

    def tile(self, row0: int, col0: int, height: int, width: int) -> TileResult:
        """Generate one tile; fields are computed with a halo so seams are exact."""
        h = self.halo
        rows = np.arange(row0 - h, row0 + height + h, dtype=np.float64)[:, None]
        cols = np.arange(col0 - h, col0 + width + h, dtype=np.float64)[None, :]
        inner = (slice(h, h + height), slice(h, h + width))
        f = self.fields
        green, lc = f.greenness(rows, cols), f.landcover(rows, cols)
        size = 2 * h + 1
        green_ctx = uniform_filter(green, size, mode="nearest")[inner]
        forest_ctx = uniform_filter((lc == 10).astype(np.float64), size, mode="nearest")[inner]
        elev_halo = f.elevation(rows[h - 1 : h + height + 1], cols[:, h - 1 : h + width + 1])
        elev = elev_halo[1:-1, 1:-1]
        x = self.grid.x_coords(col0, width)[None, :] + 0 * elev
        y = self.grid.y_coords(row0, height)[:, None] + 0 * elev
        temp, precip = self.climate_normals_at(x, y)
        lc_t, green_t, wet = lc[inner], green[inner], f.wetness(rows, cols)[inner]
        soc = soc_field(green_t, forest_ctx, green_ctx, wet, elev, temp, precip)
        soc[np.isin(lc_t, NO_SOIL)] = np.nan
        sr = reflectance(lc_t, green_t, soc, self.speckle(rows[inner[0]], cols[:, inner[1]]))
        bands = np.concatenate([sr, indices(sr), elev[None], slope_percent(elev_halo, self.cfg.resolution_m)[None]])
        cloud = f.cloud(rows[inner[0]], cols[:, inner[1]])
        bands[: len(REFLECTANCE_BANDS) + len(INDEX_BANDS), cloud] = np.nan
        truth = self.truth(soc, forest_ctx, wet, elev, temp, precip, rows[inner[0]], cols[:, inner[1]])
        return TileResult(bands.astype(np.float32), lc_t, soc.astype(np.float32), cloud, truth)

    def truth(
        self, soc: np.ndarray, forest_ctx: np.ndarray, wet: np.ndarray, elev: np.ndarray, temp: np.ndarray,
        precip: np.ndarray, rows: np.ndarray, cols: np.ndarray,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Every true map of a tile (`truth_bands`), NaN where there is no soil."""
        ph = ph_field(soc, forest_ctx, wet, temp, precip)
        permafrost = permafrost_field(elev, temp, wet, self.fields.frost_patches(rows, cols))
        maps = {
            "soc_g_kg": soc,
            "ph_h2o": ph,
            "permafrost": permafrost,
            "taxonomy_order": taxonomy_field(permafrost, soc, ph),
        }
        if self.cfg.subsoil_cm is not None:
            deep_soc, deep_ph = subsoil_fields(soc, ph, wet, forest_ctx)
            maps[output_name("soc_g_kg", self.cfg.subsoil_cm)] = deep_soc
            maps[output_name("ph_h2o", self.cfg.subsoil_cm)] = deep_ph
        no_soil = np.isnan(soc)
        return {name: np.where(no_soil, np.nan, value).astype(np.float32) for name, value in maps.items()}

    def speckle(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(7, h, w) per-pixel sensor noise (std 0.004), a function of position so tiling never matters."""
        base = self.cfg.seed * 1000 + 50
        return np.stack([0.004 * np.sqrt(3.0) * value_noise(rows, cols, 1.0, base + b) for b in range(7)])

    def candidate_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Oversampled random sample locations (pixel centres) over the whole region."""
        rng = np.random.default_rng(self.cfg.seed + 101)
        n = int(self.cfg.n_points * 2.5) + 50
        return rng.integers(0, self.grid.height, n), rng.integers(0, self.grid.width, n)

    def climate_block(self, clim: Grid, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """(variable, time, h, w) climate values of a block of the climate grid."""
        lon = clim.x_coords(col0, width)[None, :] + np.zeros((height, 1))
        lat = clim.y_coords(row0, height)[:, None] + np.zeros((1, width))
        x, y = Transformer.from_crs(4326, self.cfg.epsg, always_xy=True).transform(lon, lat)
        return self.climate.series(np.asarray(x), np.asarray(y), lat)

    def climate_grid(self) -> Grid:
        """The TerraClimate-like grid (EPSG:4326) covering the region with a one-cell margin."""
        west, south, east, north = self.grid.bounds
        xs = np.array([west, east, west, east])
        ys = np.array([south, south, north, north])
        lon, lat = self.to_lonlat.transform(xs, ys)
        res = self.cfg.climate_res_deg
        w0, n0 = (np.floor(lon.min() / res) - 1) * res, (np.ceil(lat.max() / res) + 1) * res
        width = int(np.ceil((lon.max() - w0) / res)) + 1
        height = int(np.ceil((n0 - lat.min()) / res)) + 1
        return Grid.from_origin(4326, float(w0), float(n0), res, width, height)


def region_geojson(grid: Grid) -> dict[str, object]:
    """The region outline as a GeoJSON Feature in WGS84 (densified edges)."""
    west, south, east, north = grid.bounds
    t = np.linspace(0, 1, 11)
    xs = np.concatenate([west + (east - west) * t, np.full(11, east), east - (east - west) * t, np.full(11, west)])
    ys = np.concatenate(
        [np.full(11, south), south + (north - south) * t, np.full(11, north), north - (north - south) * t]
    )
    lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    return {
        "type": "Feature",
        "properties": {"crs_of_grid": grid.crs},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def generate_demo_region(
    cfg: DemoConfig, root: str, layout: RasterLayout | None = None, overwrite: bool = False
) -> DemoPaths:
    """Write the whole demo region under ``root``; returns where each part went."""
    layout = layout or RasterLayout()
    paths = DemoPaths(storage.resolve(root).url)
    gen = DemoGenerator(cfg)
    params = {"generator": "soilnet.demo_region", **cfg.model_dump(), "context_radius_m": CONTEXT_RADIUS_M}
    raster = create_raster_cube(paths.raster, gen.grid, BAND_NAMES, layout, params, landcover=True, overwrite=overwrite)
    names = truth_bands(cfg)
    truth = create_raster_cube(paths.truth, gen.grid, names, layout, params, overwrite=overwrite)
    cand_r, cand_c = gen.candidate_points()
    keep = np.zeros(len(cand_r), dtype=bool)
    truth_at = {name: np.full(len(cand_r), np.nan) for name in names}
    tiles = list(gen.grid.tiles(layout.shard))
    for row0, col0, h, w in progress(tiles, "demo raster tiles"):
        tile = gen.tile(row0, col0, h, w)
        raster.write_tile(row0, col0, tile.bands, landcover=tile.landcover)
        truth.write_tile(row0, col0, np.stack([tile.truth[name] for name in names]))
        inside = np.flatnonzero((cand_r >= row0) & (cand_r < row0 + h) & (cand_c >= col0) & (cand_c < col0 + w))
        r, c = cand_r[inside] - row0, cand_c[inside] - col0
        keep[inside] = np.isfinite(tile.soc[r, c]) & ~tile.cloud[r, c]
        for name in names:
            truth_at[name][inside] = tile.truth[name][r, c]
    raster.finish()
    truth.finish()
    _write_climate(gen, paths.climate, params, overwrite)
    _write_points(gen, paths.points, cand_r, cand_c, keep, truth_at, overwrite)
    with storage.open_file(paths.region, "w") as f:
        json.dump(region_geojson(gen.grid), f)
    log.info("demo region written to %s", paths.root)
    return paths


def _write_climate(gen: DemoGenerator, url: str, params: dict[str, object], overwrite: bool) -> None:
    clim = gen.climate_grid()
    layout = ClimateLayout()
    cube = create_climate_cube(url, clim, list(CLIMATE_VARIABLES), gen.climate.times, layout, params, overwrite)
    for row0, col0, h, w in progress(list(clim.tiles(layout.spatial_chunk * 4)), "demo climate blocks"):
        write_climate_block(cube, row0, col0, gen.climate_block(clim, row0, col0, h, w))
    finish_climate_cube(cube)


def _noisy_classes(rng: np.random.Generator, codes: np.ndarray, n_classes: int, flip: float) -> np.ndarray:
    """Class codes with each flipped to a uniformly drawn other class with probability `flip`."""
    flipped = rng.random(len(codes)) < flip
    shift = rng.integers(1, n_classes, len(codes))
    return np.where(flipped, (codes + shift) % n_classes, codes).astype(np.int64)


def _write_points(
    gen: DemoGenerator,
    url: str,
    rows: np.ndarray,
    cols: np.ndarray,
    keep: np.ndarray,
    truth: dict[str, np.ndarray],
    overwrite: bool,
) -> None:
    soc = truth["soc_g_kg"]
    cfg = gen.cfg
    chosen = np.flatnonzero(keep)[: cfg.n_points]
    if len(chosen) < cfg.n_points:
        log.warning("only %d of %d sample points fall on soil; keeping %d", len(chosen), cfg.n_points, len(chosen))
    rng = np.random.default_rng(cfg.seed + 202)
    x = gen.grid.x_coords()[cols[chosen]]
    y = gen.grid.y_coords()[rows[chosen]]
    lon, lat = gen.to_lonlat.transform(x, y)
    noisy = np.maximum(soc[chosen] + rng.normal(0.0, cfg.noise_std_g_kg, len(chosen)), 0.1)
    day = rng.integers(60, 300, len(chosen))
    dates = np.datetime64(f"{cfg.sample_year}-01-01") + day.astype("timedelta64[D]")
    df = pd.DataFrame(
        {
            "id": [f"demo-{i:06d}" for i in range(len(chosen))],
            "lon": lon,
            "lat": lat,
            "x": x,
            "y": y,
            "date": pd.to_datetime(dates),
            "depth_top_cm": 0.0,
            "depth_bottom_cm": 20.0,
            "source": "demo",
            "soc_g_kg": noisy,
            "soc_true_g_kg": soc[chosen],
        }
    )
    df = _with_further_targets(df, cfg, {name: values[chosen] for name, values in truth.items()})
    classes = {"permafrost": list(PERMAFROST_CLASSES), "taxonomy_order": list(TAXONOMY_ORDERS)}
    write_points(df, url, cfg.epsg, overwrite=overwrite, classes=classes)


def _with_further_targets(df: pd.DataFrame, cfg: DemoConfig, truth: dict[str, np.ndarray]) -> pd.DataFrame:
    """The topsoil rows with pH and class labels, and the subsoil rows if configured (own random streams)."""
    n = len(df)
    ph_rng = np.random.default_rng([cfg.seed, 303])
    class_rng = np.random.default_rng([cfg.seed, 404])
    permafrost = _noisy_classes(class_rng, truth["permafrost"].astype(np.int64), 2, cfg.class_label_noise)
    order = _noisy_classes(class_rng, truth["taxonomy_order"].astype(np.int64), 4, cfg.class_label_noise)
    top = df.assign(
        ph_h2o=truth["ph_h2o"] + ph_rng.normal(0.0, cfg.ph_noise_std, n),
        permafrost=pd.array(np.asarray(PERMAFROST_CLASSES)[permafrost], dtype="string"),
        taxonomy_order=pd.array(np.asarray(TAXONOMY_ORDERS)[order], dtype="string"),
    )
    if cfg.subsoil_cm is None:
        return top
    deep_rng = np.random.default_rng([cfg.seed, 505])
    deep_soc, deep_ph = (truth[output_name(c, cfg.subsoil_cm)] for c in ("soc_g_kg", "ph_h2o"))
    deep = top.assign(
        id=[f"{i}-sub" for i in top["id"]],
        depth_top_cm=cfg.subsoil_cm[0],
        depth_bottom_cm=cfg.subsoil_cm[1],
        soc_g_kg=np.maximum(deep_soc + deep_rng.normal(0.0, cfg.noise_std_g_kg, n), 0.1),
        soc_true_g_kg=deep_soc,
        ph_h2o=deep_ph + deep_rng.normal(0.0, cfg.ph_noise_std, n),
        permafrost=pd.array([pd.NA] * n, dtype="string"),
        taxonomy_order=pd.array([pd.NA] * n, dtype="string"),
    )
    return pd.concat([top, deep], ignore_index=True)
