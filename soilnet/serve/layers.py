"""How each layer is drawn: its colour scale in physical units, or its classes, read from its COG.

A continuous layer (any float layer, or integers with a scale) spans the ``percentiles`` of its
valid values, read from the COG's overview; an integer layer with few distinct values (masks,
``aoa``, classes) is drawn as classes, in the COG's own colour table when it has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rio_tiler.colormap import cmap
from rio_tiler.io import Reader

from soilnet import storage
from soilnet.serve.catalog import LayerSource

#: Colours of classes when the COG has no colour table (Tableau 10).
CLASS_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
WGS84 = CRS.from_epsg(4326)
LEGEND_STOPS = 11


@dataclass(frozen=True)
class Layer:
    """A layer ready to draw: its source, encoding, extent and colour scale or classes."""

    source: LayerSource
    dtype: str
    nodata: float | None
    scale: float
    offset: float
    bounds: tuple[float, float, float, float]
    minzoom: int
    maxzoom: int
    kind: str  # "continuous" or "classes"
    colormap: str = "viridis"
    vmin: float = 0.0
    vmax: float = 1.0
    classes: dict[int, str] = field(default_factory=dict)  # value -> colour "#rrggbb"

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.source.name

    @property
    def unit(self) -> str:
        """Physical unit as shown ("" when dimensionless)."""
        return "" if self.source.unit in (None, "1") else str(self.source.unit)

    @property
    def decimals(self) -> int:
        """Decimals that show a value at the precision it is stored with."""
        if self.dtype.startswith("float"):
            return 3
        return max(0, math.ceil(-math.log10(self.scale))) if self.scale < 1 else 0

    def colour_table(self) -> dict[int, tuple[int, int, int, int]]:
        """Class value -> RGBA, for rendering a classes layer."""
        return {v: (*(int(c[i : i + 2], 16) for i in (1, 3, 5)), 255) for v, c in self.classes.items()}

    def to_json(self) -> dict[str, Any]:
        """What the page needs: names, units, legend."""
        src = self.source
        info: dict[str, Any] = {
            "name": src.name,
            "title": src.title,
            "description": src.description,
            "unit": self.unit,
            "kind": self.kind,
            "bounds": list(self.bounds),
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "decimals": self.decimals,
        }
        if self.kind == "classes":
            names = src.class_names
            info["classes"] = [
                {"value": v, "label": names.get(v, str(v)), "colour": c} for v, c in self.classes.items()
            ]
        else:
            colours = cmap.get(self.colormap)
            picks = np.linspace(0, 255, LEGEND_STOPS).round().astype(int)
            info.update(
                vmin=self.vmin,
                vmax=self.vmax,
                colormap=self.colormap,
                stops=["#{:02x}{:02x}{:02x}".format(*colours[int(i)][:3]) for i in picks],
            )
        return info


def colormap_for(name: str) -> str:
    """Colour map of a continuous layer: uncertainty (std, dissimilarity) in magma, values in viridis."""
    return "magma" if name.endswith("_std") or name == "di" else "viridis"


def describe(source: LayerSource, percentiles: tuple[float, float], max_classes: int) -> Layer:
    """Read a layer's COG header and overview and decide how to draw it."""
    with storage.rasterio_env(source.url), Reader(storage.gdal_path(source.url)) as src:
        ds = src.dataset
        dtype, nodata = ds.dtypes[0], ds.nodata
        scale, offset = float(ds.scales[0] or 1.0), float(ds.offsets[0] or 0.0)
        west, south, east, north = src.get_geographic_bounds(WGS84)
        common = {
            "source": source,
            "dtype": dtype,
            "nodata": nodata,
            "scale": scale,
            "offset": offset,
            "bounds": (west, south, east, north),
            "minzoom": src.minzoom,
            "maxzoom": src.maxzoom,
        }
        preview = src.preview(max_size=1024, unscale=True).array
        try:
            table = ds.colormap(1)
        except ValueError:  # no colour table in the file
            table = {}
    valid = np.asarray(preview.compressed(), dtype=np.float64)
    if not valid.size:
        raise ValueError(f"{source.url}: layer {source.name!r} has no valid pixel")
    values = np.unique(valid)
    is_int = np.dtype(dtype).kind in "iu" and scale == 1.0 and offset == 0.0
    if is_int and (table or len(values) <= max_classes or source.class_names):
        found = sorted({*values.astype(int).tolist(), *source.class_names})
        colours = {
            v: "#{:02x}{:02x}{:02x}".format(*table[v][:3]) if v in table else CLASS_COLOURS[i % len(CLASS_COLOURS)]
            for i, v in enumerate(found)
        }
        return Layer(**common, kind="classes", classes=colours)
    low, high = (float(v) for v in np.percentile(valid, percentiles))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return Layer(**common, kind="continuous", colormap=colormap_for(source.name), vmin=low, vmax=high)
