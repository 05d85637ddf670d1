"""PNG previews of map layers, read decimated so a continent fits in memory.

A continuous layer is drawn with a colour bar, the pixels outside the area of applicability (``aoa`` 0) greyed
and hatched; a class layer of a categorical target with the colours
of its COG colour table (`soilnet.mapping.classes`) and a legend of its labels.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from soilnet import storage
from soilnet.mapping.classes import CLASS_NODATA, class_colours
from soilnet.mapping.map_cube import AOA_LAYER, MapCube, units_of


def decimated_layer(cube: MapCube, layer: str, max_px: int = 1000) -> np.ndarray:
    """Every ``step``-th pixel of a layer so that its long side is at most ``max_px``."""
    if layer not in cube.layers:
        raise ValueError(f"{cube.url}: no layer {layer!r} (layers: {cube.layers})")
    step = max(1, math.ceil(max(cube.grid.height, cube.grid.width) / max_px))
    return np.asarray(cube.arrays[layer][::step, ::step])


def save_png(fig: Figure, url: str | os.PathLike[str]) -> str:
    """Render a figure as PNG at a URL (local or s3://)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    where = os.fspath(url)
    with storage.open_file(where, "wb") as f:
        f.write(buf.getvalue())
    return where


def shade_outside_aoa(ax: Axes, cube: MapCube) -> None:
    """Grey and hatch the pixels outside the area of applicability (``aoa`` = 0), when the map has the layer."""
    if AOA_LAYER not in cube.layers:
        return
    outside = (decimated_layer(cube, AOA_LAYER) == 0).astype(np.float32)
    if not outside.any():
        return
    west, south, east, north = cube.grid.bounds
    extent = (west, east, south, north)
    grey = ListedColormap(["#7f7f7f"])
    ax.imshow(np.ma.masked_equal(outside, 0), cmap=grey, alpha=0.65, extent=extent, interpolation="nearest")
    ax.contourf(outside, levels=[0.5, 1.5], colors="none", hatches=["///"], extent=extent, origin="upper")
    patch = Patch(facecolor="#7f7f7f", alpha=0.65, hatch="///", label="outside the area of applicability")
    ax.legend(handles=[patch], loc="lower left", fontsize="small")


def layer_preview(cube: MapCube, layer: str, url: str | os.PathLike[str], cmap: str = "YlOrBr") -> str:
    """A layer with a colour bar (units from the layer name); nodata is left blank, pixels outside the area of
    applicability greyed and hatched. Class layers: `class_preview`."""
    if layer in cube.classes:
        return class_preview(cube, layer, url)
    values = decimated_layer(cube, layer).astype(np.float32)
    west, south, east, north = cube.grid.bounds
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, extent=(west, east, south, north))
    fig.colorbar(image, ax=ax, label=f"{layer} ({units_of(layer)})")
    shade_outside_aoa(ax, cube)
    ax.set_title(f"{layer} at {cube.grid.res:g} m ({cube.grid.crs})")
    return save_png(fig, url)


def class_preview(cube: MapCube, layer: str, url: str | os.PathLike[str]) -> str:
    """A class layer in its colour-table colours with a legend of the class labels; nodata is left blank."""
    labels = cube.classes[layer]
    codes = np.ma.masked_equal(decimated_layer(cube, layer), CLASS_NODATA)
    colours = [f"#{c}" for c in class_colours(labels)]
    west, south, east, north = cube.grid.bounds
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    ax.imshow(
        codes,
        cmap=ListedColormap(colours),
        vmin=-0.5,
        vmax=len(labels) - 0.5,
        interpolation="nearest",
        extent=(west, east, south, north),
    )
    handles = [Patch(facecolor=c, label=label) for c, label in zip(colours, labels, strict=True)]
    ax.legend(handles=handles, title=layer, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{layer} at {cube.grid.res:g} m ({cube.grid.crs})")
    return save_png(fig, url)
