"""Generators of ingest inputs: GeoTIFFs in several CRSs and dtypes, TerraClimate-like NetCDF, LUCAS CSVs.

Everything is tiny, deterministic (fixed seeds) and georeferenced for real: a patch of south-west
Germany (about 8.6 E, 48.4 N) seen in UTM 32N, Web Mercator and lon/lat, ingested onto an
EPSG:3035 grid. Files are written with ``storage.open_file`` so the same writers serve local
folders and the moto S3 endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.warp import transform as warp_transform

from soilnet import storage
from soilnet.data.grid import Grid

#: Centre of the test patch in lon/lat.
CENTRE_LONLAT = (8.6, 48.4)


def smooth_field(shape: tuple[int, int], seed: int, low: float, high: float) -> np.ndarray:
    """A smooth deterministic field in [low, high] (bilinear comparisons stay meaningful)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    fx, fy, phase = rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0), rng.uniform(0, np.pi)
    field = 0.5 + 0.25 * np.sin(2 * np.pi * fx * xx + phase) + 0.25 * np.cos(2 * np.pi * fy * yy)
    return low + (high - low) * field


def write_geotiff(url: str, data: np.ndarray, epsg: int | None, transform: Affine, nodata: float | None = None) -> str:
    """Write a tiled, deflate-compressed GeoTIFF of (band, h, w) ``data`` to a URL."""
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "count": count,
        "height": height,
        "width": width,
        "dtype": data.dtype.name,
        "transform": transform,
        "tiled": True,
        "blockxsize": 32,
        "blockysize": 32,
        "compress": "deflate",
    }
    if epsg is not None:
        profile["crs"] = f"EPSG:{epsg}"
    if nodata is not None:
        profile["nodata"] = nodata
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data)
        payload = mem.read()
    with storage.open_file(url, "wb") as f:
        f.write(payload)
    return url


def _origin(epsg: int, res: float, shape: tuple[int, int]) -> Affine:
    """Transform of a ``shape`` raster centred on the test patch in EPSG ``epsg``."""
    xs, ys = warp_transform("EPSG:4326", f"EPSG:{epsg}", [CENTRE_LONLAT[0]], [CENTRE_LONLAT[1]])
    h, w = shape
    return Affine(res, 0, xs[0] - res * w / 2, 0, -res, ys[0] + res * h / 2)


def _dtype_values(field: np.ndarray, dtype: str) -> np.ndarray:
    return np.rint(field).astype(dtype) if np.dtype(dtype).kind in "iu" else field.astype(dtype)


#: (epsg, pixel size, dtype, nodata) of the generated scenes: UTM 32N, Web Mercator, lon/lat.
SCENES: dict[str, tuple[int, float, str, float | None]] = {
    "utm_uint16": (32632, 30.0, "uint16", 0),
    "mercator_int16": (3857, 40.0, "int16", -9999),
    "lonlat_float32": (4326, 0.0004, "float32", None),
}


def write_scene(url: str, name: str, shape: tuple[int, int] = (80, 96), seed: int = 0) -> str:
    """One 2-band scene (``elevation`` m, ``slope`` %) with a nodata hole, as declared in SCENES."""
    epsg, res, dtype, nodata = SCENES[name]
    elevation = smooth_field(shape, seed, 200.0, 1500.0)
    slope = smooth_field(shape, seed + 1, 0.0, 40.0)
    data = np.stack([_dtype_values(elevation, dtype), _dtype_values(slope, dtype)])
    hole = (slice(10, 20), slice(30, 45))
    if nodata is None:
        data[(slice(None), *hole)] = np.nan
    else:
        data[(slice(None), *hole)] = nodata
    return write_geotiff(url, data, epsg, _origin(epsg, res, shape), nodata)


def write_landsat_c2(url: str, shape: tuple[int, int] = (64, 64), seed: int = 3) -> str:
    """A raw Landsat C2 L2 file: SR_B1..SR_B3 DNs (uint16, nodata 0) and a QA_PIXEL band with clouds."""
    rng = np.random.default_rng(seed)
    sr = [np.rint(smooth_field(shape, seed + i, 8000, 20000)).astype(np.uint16) for i in range(3)]
    qa = np.full(shape, 21824, dtype=np.uint16)  # clear land
    qa[5:15, 5:15] = 22280  # cloud (bit 3) + dilated cloud (bit 1)
    qa[40:50, 20:30] = 1 << 4  # cloud shadow
    qa[:, 60:] = 1 << 5  # snow
    sr[0][rng.random(shape) < 0.01] = 0
    return write_geotiff(url, np.stack([*sr, qa]), 32632, _origin(32632, 30.0, shape), nodata=0)


def target_grid(res: float = 30.0, size: int = 100, epsg: int = 3035) -> Grid:
    """A ``size`` px square EPSG:3035 grid on the test patch, snapped to whole pixels."""
    xs, ys = warp_transform("EPSG:4326", f"EPSG:{epsg}", [CENTRE_LONLAT[0]], [CENTRE_LONLAT[1]])
    west = np.floor((xs[0] - res * size / 2) / res) * res
    north = np.ceil((ys[0] + res * size / 2) / res) * res
    return Grid.from_origin(epsg, float(west), float(north), res, size, size)


# ---------------------------------------------------------------- NetCDF


def climate_values(variable: str, months: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Deterministic (time, lat, lon) values; ``swe`` and ``ro`` contain true zeros."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 100, size=(months, *shape))
    if variable in ("swe", "ro"):
        base[:, :, : shape[1] // 2] = 0.0
    return np.round(base, 1)


def lonlat_axes(shape: tuple[int, int], res: float = 1 / 24) -> tuple[np.ndarray, np.ndarray]:
    """Descending latitude and ascending longitude pixel centres around the test patch (TerraClimate)."""
    h, w = shape
    lat0 = np.floor(CENTRE_LONLAT[1] / res) * res + res * h / 2
    lon0 = np.floor(CENTRE_LONLAT[0] / res) * res - res * w / 2
    lat = lat0 - res * (np.arange(h) + 0.5)
    lon = lon0 + res * (np.arange(w) + 0.5)
    return lat, lon


def write_netcdf(url: str, ds: xr.Dataset) -> str:
    """Write a dataset to a NetCDF4 file at a URL."""
    payload = ds.to_netcdf(engine="h5netcdf")
    with storage.open_file(url, "wb") as f:
        f.write(bytes(payload))
    return url


def terraclimate_dataset(
    variables: Sequence[str], year: int, shape: tuple[int, int] = (12, 10), months: Sequence[int] = range(1, 13)
) -> xr.Dataset:
    """A TerraClimate-like dataset: int16 packed with scale_factor / add_offset, _FillValue, CF time."""
    lat, lon = lonlat_axes(shape)
    times = pd.to_datetime([f"{year}-{m:02d}-01" for m in months])
    data_vars = {}
    for i, v in enumerate(variables):
        values = climate_values(v, len(times), shape, seed=year * 100 + i + sum(map(ord, v)))
        values[:, 0, 0] = np.nan  # fill value in the corner (ocean)
        data_vars[v] = (("time", "lat", "lon"), values)
    ds = xr.Dataset(data_vars, coords={"time": times, "lat": lat, "lon": lon})
    for v in variables:
        ds[v].encoding.update(dtype="int16", scale_factor=0.1, add_offset=0.0, _FillValue=-32768)
    ds["time"].encoding.update(units="days since 1900-01-01", calendar="gregorian")
    return ds


def write_terraclimate(root: str, variables: Sequence[str], years: Sequence[int], **kw: object) -> list[str]:
    """One file per variable per year, named like TerraClimate's (``TerraClimate_<var>_<year>.nc``)."""
    urls = []
    for v in variables:
        for y in years:
            url = storage.join(root, f"TerraClimate_{v}_{y}.nc")
            urls.append(write_netcdf(url, terraclimate_dataset([v], y, **kw)))  # type: ignore[arg-type]
    return urls


# ---------------------------------------------------------------- LUCAS / RaCA CSVs


def write_text(url: str, text: str, encoding: str = "utf-8") -> str:
    """Write text to a URL."""
    with storage.open_file(url, "wb") as f:
        f.write(text.encode(encoding))
    return url


# The LUCAS fixtures below use the header lines of the distributed files (values are made up):
# - 2009, LUCAS_TOPSOIL_v1 (ESDAC): the column names and order as read by published code that loads that file
#   (soilspectroscopy/ossl-imports dataset/LUCAS: coarse, clay, silt, sand, OC, CaCO3, N, P, K, CEC; renames of
#   POINT_ID, pH_in_H2O, pH_in_CaCl, GPS_LAT, GPS_LONG in scripts reading Lucas_soil_and_land_use_data_2009.csv).
#   No complete header line of the 2009 file was found in the searchable sources, so trailing columns may be
#   missing here; the columns the preset reads are all there.
# - 2015, LUCAS_Topsoil_2015_20200323.csv (ESDAC): the header line quoted in issue #15, from the real file
#   (UTF-8 with a byte order mark; "pH_H20" is spelt with a zero; no sampling date column).
# - 2018, LUCAS-SOIL-2018.csv (ESDAC, LUCAS-SOIL-2018-v2): the columns and their order as published in the
#   dataset's readme and read by soilKey's load_lucas_soil_2018 (R/benchmark-lucas-2018.R); no texture columns.
LUCAS_2009_HEADER = "POINT_ID,coarse,clay,silt,sand,pH_in_H2O,pH_in_CaCl,OC,CaCO3,N,P,K,CEC,GPS_LAT,GPS_LONG"
LUCAS_2015_HEADER = (
    "OID_,Point_ID,long,lat,Clay,Sand,Silt,pH_CaCl2,pH_H20,EC,OC,CaCO3,P,N,K,LC,LU,"
    "NUTS_0,NUTS_1,NUTS_2,NUTS_3,LC0_Desc,LC1_Desc,LU1_Desc"
)
LUCAS_2018_HEADER = (
    "Depth,POINTID,pH_CaCl2,pH_H2O,EC,OC,CaCO3,P,N,K,OC (20-30 cm),CaCO3 (20-30 cm),Ox_Al,Ox_Fe,"
    "NUTS_0,NUTS_1,NUTS_2,NUTS_3,TH_LAT,TH_LONG,SURVEY_DATE,Elev,LC,LU,LC0_Desc,LC1_Desc,LU1_Desc"
)

LUCAS_2009 = (
    LUCAS_2009_HEADER
    + """
44143104,3,21,45,34,6.1,5.6,23.4,0,1.9,30.1,150.2,12.1,48.41,8.61
44143106,5,18,40,42,7.2,6.8,12.0,3,1.1,<10,98.0,9.5,48.42,8.63
44143108,2,30,40,30,5.5,4.9,< 6,0,0.8,15.0,77.0,15.0,48.39,8.58
44143110,1,25,50,25,6.6,6.0,abc,0,1.0,11.0,60.0,11.0,48.38,8.57
44143104,3,21,45,34,6.1,5.6,23.4,0,1.9,30.1,150.2,12.1,48.41,8.61
44143112,1,25,50,25,6.6,6.0,15.5,0,1.0,11.0,60.0,11.0,8.59,48.40
44143114,1,25,50,25,6.6,6.0,15.5,0,1.0,11.0,60.0,11.0,60.0,25.0
"""
)

#: Written with a byte order mark, as distributed (`write_text(url, "\ufeff" + LUCAS_2015)`).
LUCAS_2015 = "\n".join(
    [
        LUCAS_2015_HEADER,
        "1,47862690,8.595,48.405,19,40,41,5.8,6.4,12.1,31.5,1,< LOD,2.3,180.5,"
        "E20,U111,DE,DE1,DE13,DE134,Grassland,Permanent grassland,Agriculture",
        "2,47862692,8.605,48.415,0,0,0,6.6,7.1,20.0,18.2,4,12.0,1.7,160.0,"
        "B11,U111,DE,DE1,DE13,DE134,Cropland,Common wheat,Agriculture",
        "3,47862694,8.615,48.395,22,30,48,6.6,7.1,20.0,< LOD,4,12.0,1.7,160.0,"
        "B16,U111,DE,DE1,DE13,DE134,Cropland,Maize,Agriculture",
        "",
    ]
)

LUCAS_2018 = "\n".join(
    [
        LUCAS_2018_HEADER,
        "0-20 cm,48362518,5.1,5.9,10.2,41.3,<  LOD,< LOD,3.1,201.4,,,,,DE,DE1,DE13,DE134,"
        "48.401,8.602,21-06-18,402,E20,U111,Grassland,Permanent grassland,Agriculture",
        "0-10 cm,48362520,6.9,7.4,25.0,9.8,12,33.0,0.9,120.0,8.1,10,95.2,120.3,DE,DE1,DE13,DE134,"
        "48.409,8.611,22-06-18,398,B11,U111,Cropland,Common wheat,Agriculture",
        "0-20 cm,48362522,7.0,7.6,25.0,10.1,12,33.0,0.9,120.0,,,,,DE,DE1,DE13,DE134,"
        "48.401,8.602,21-06-18,402,B11,U111,Cropland,Common wheat,Agriculture",
        "",
    ]
)

RACA_SITES = """rcasiteid,Lat,Long,SOCstock5,SOCstock30,SOCstock100,Year
C1401U01,38.51,-98.77,10.2,45.5,110.3,2010
C1401U02,38.61,-98.52,8.1,39.9,95.0,2011
C1401U03,38.71,-98.42,7.7,,88.0,2010
"""
