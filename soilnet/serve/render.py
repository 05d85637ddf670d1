"""Reads of the COGs for the page: Web Mercator PNG tiles (rio-tiler) and the values at one point.

Tiles and points read with nearest-neighbour resampling, so a drawn pixel and a clicked value are
the COG's own values; points are read from the full-resolution image, never from an overview.
"""

from __future__ import annotations

import functools
from typing import Any

import rio_tiler.utils
from rasterio.crs import CRS
from rasterio.session import Session
from rasterio.warp import calculate_default_transform
from rio_tiler.colormap import cmap
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader

from soilnet import storage
from soilnet.serve.layers import Layer


@functools.lru_cache(maxsize=1024)
def _default_transform(src: str, dst: str, width: int, height: int, bounds: tuple[float, ...]) -> tuple:
    return calculate_default_transform(CRS.from_wkt(src), CRS.from_wkt(dst), width, height, *bounds)


def remembered_default_transform(src_crs, dst_crs, width, height, *bounds, **kwargs) -> tuple:
    """`calculate_default_transform`, remembered per (CRS, CRS, size, bounds).

    rio-tiler asks GDAL for a dataset's whole-raster resolution in Web Mercator on every tile read: about
    half the CPU time of a tile here, always the same answer for one COG. The viewer installs this in
    ``rio_tiler.utils`` so each COG's answer is computed once (calls with other arguments pass through).
    """
    if kwargs or len(bounds) != 4:
        return calculate_default_transform(src_crs, dst_crs, width, height, *bounds, **kwargs)
    src, dst = CRS.from_user_input(src_crs).to_wkt(), CRS.from_user_input(dst_crs).to_wkt()
    return _default_transform(src, dst, int(width), int(height), tuple(float(b) for b in bounds))


rio_tiler.utils.calculate_default_transform = remembered_default_transform


@functools.cache
def gdal_session() -> Session:
    """The process's rasterio session (AWS keys from the environment, or none), made once: rasterio would
    otherwise build a boto3 session for every environment it enters, most of a tile's CPU time."""
    return Session.from_environ()


def render_tile(layer: Layer, x: int, y: int, z: int, tilesize: int = 256) -> bytes | None:
    """PNG of one Web Mercator tile of a layer (transparent where nodata); None when it misses the layer."""
    classes = layer.kind == "classes"
    url = layer.source.url
    with storage.rasterio_env(url, gdal_session()), Reader(storage.gdal_path(url)) as src:
        try:
            img = src.tile(
                x, y, z, tilesize=tilesize, resampling_method="nearest", reproject_method="nearest", unscale=not classes
            )
        except TileOutsideBounds:
            return None
        if classes:
            return img.render(img_format="PNG", colormap=layer.colour_table())
        img.rescale(in_range=((layer.vmin, layer.vmax),))
        return img.render(img_format="PNG", colormap=cmap.get(layer.colormap))


def point_value(layer: Layer, lon: float, lat: float) -> float | None:
    """The layer's value (physical units) at a WGS84 point from the full-resolution COG; None for nodata/outside."""
    url = layer.source.url
    with storage.rasterio_env(url, gdal_session()), Reader(storage.gdal_path(url)) as src:
        try:
            point = src.point(lon, lat, unscale=True)
        except PointOutsideBounds:
            return None
    values = point.array
    return None if bool(values.mask[0]) else float(values[0])


def point_values(layers: list[Layer], lon: float, lat: float) -> list[dict[str, Any]]:
    """Every layer's value at a point, with its unit and, for classes, the class label."""
    out = []
    for layer in layers:
        value = point_value(layer, lon, lat)
        entry: dict[str, Any] = {"layer": layer.name, "value": value, "unit": layer.unit}
        if layer.kind == "classes" and value is not None:
            entry["label"] = layer.source.class_names.get(int(value), str(int(value)))
        out.append(entry)
    return out
