"""Reads of the COGs for the page: Web Mercator PNG tiles (rio-tiler) and the values at one point.

Tiles and points read with nearest-neighbour resampling, so a drawn pixel and a clicked value are
the COG's own values; points are read from the full-resolution image, never from an overview.
"""

from __future__ import annotations

from typing import Any

from rio_tiler.colormap import cmap
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader

from soilnet import storage
from soilnet.serve.layers import Layer


def render_tile(layer: Layer, x: int, y: int, z: int, tilesize: int = 256) -> bytes | None:
    """PNG of one Web Mercator tile of a layer (transparent where nodata); None when it misses the layer."""
    classes = layer.kind == "classes"
    with storage.rasterio_env(layer.source.url), Reader(storage.gdal_path(layer.source.url)) as src:
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
    with storage.rasterio_env(layer.source.url), Reader(storage.gdal_path(layer.source.url)) as src:
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
