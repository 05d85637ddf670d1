"""Cloud-Optimized GeoTIFFs of map layers, as SoilGrids publishes them: scaled integers with nodata.

Mean and std layers are stored as int16 ``round(value / scale)`` with the GDAL band scale set
(so readers that apply scale/offset get the value back) and -32768 as nodata;
``input_missing`` stays uint8 with 255 as nodata. The layer is copied into a tiled GeoTIFF one
map-cube chunk row at a time, then turned into a COG (internal tiles, overviews) by rio-cogeo.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from soilnet import storage
from soilnet.mapping.map_cube import MISSING_LAYER, MISSING_NODATA, MapCube

log = logging.getLogger(__name__)

INT16_NODATA = -32768


@dataclass(frozen=True)
class CogInfo:
    """One written COG: where, how values are encoded."""

    layer: str
    url: str
    dtype: str
    nodata: int
    scale: float


def encode_layer(values: np.ndarray, scale: float) -> np.ndarray:
    """float values -> int16 ``round(values / scale)`` clipped to int16, NaN -> nodata."""
    info = np.iinfo(np.int16)
    raw = np.clip(np.rint(values / scale), info.min + 1, info.max)
    return np.where(np.isnan(values), INT16_NODATA, raw).astype(np.int16)


def _write_gtiff(cube: MapCube, layer: str, path: str, scale: float, blocksize: int) -> CogInfo:
    missing = layer == MISSING_LAYER
    dtype, nodata = ("uint8", MISSING_NODATA) if missing else ("int16", INT16_NODATA)
    grid = cube.grid
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": dtype,
        "crs": CRS.from_epsg(grid.epsg),
        "transform": grid.affine,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": blocksize,
        "blockysize": blocksize,
    }
    step = cube.chunk_px
    with rasterio.open(path, "w", **profile) as dst:
        for row0 in range(0, grid.height, step):
            values = cube.read(layer, row0, 0, min(step, grid.height - row0), grid.width)
            block = values if missing else encode_layer(values, scale)
            dst.write(block, 1, window=((row0, row0 + block.shape[0]), (0, grid.width)))
        if not missing:
            dst.scales, dst.offsets = (scale,), (0.0,)
        dst.set_band_description(1, layer)
    return CogInfo(layer, "", dtype, nodata, 1.0 if missing else scale)


def export_cog(cube: MapCube, layer: str, url: str, scale: float, blocksize: int = 256) -> CogInfo:
    """Write one map layer as a validated COG at ``url`` (local path or s3://)."""
    if layer not in cube.layers:
        raise ValueError(f"{cube.url}: no layer {layer!r} to export (layers: {cube.layers})")
    with tempfile.TemporaryDirectory(prefix="soilnet-cog-") as tmp:
        plain, cog = os.path.join(tmp, "plain.tif"), os.path.join(tmp, "cog.tif")
        info = _write_gtiff(cube, layer, plain, scale, blocksize)
        profile = cog_profiles.get("deflate")
        profile.update(blockxsize=blocksize, blockysize=blocksize, predictor=2)
        cog_translate(plain, cog, profile, nodata=info.nodata, quiet=True, in_memory=False)
        valid, errors, _ = cog_validate(cog, quiet=True)
        if not valid:
            raise RuntimeError(f"{url}: written COG does not validate: {errors}")
        with open(cog, "rb") as src, storage.open_file(url, "wb") as dst:
            dst.write(src.read())
    log.info("COG %s written (%s, scale %g)", url, info.dtype, info.scale)
    return CogInfo(layer, url, info.dtype, info.nodata, info.scale)
