"""Tiles and point values against the COGs read with rasterio (not through rio-tiler)."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer
from rio_tiler.colormap import cmap

from soilnet.serve.catalog import sources_from_map
from soilnet.serve.layers import Layer, describe
from soilnet.serve.render import point_value, point_values, render_tile
from tests.fixtures.map_outputs import cog_value

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def layers(published_map) -> dict[str, Layer]:
    return {s.name: describe(s, (2.0, 98.0), 16) for s in sources_from_map(published_map.out)}


#: GDAL's warper maps pixels with an approximate transformer (error threshold 0.125 px): a tile pixel whose
#: centre lies this close to a COG pixel edge may take the neighbour's value.
EDGE_PX = 0.125


def expected_tile(url: str, x: int, y: int, z: int, size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values (scale applied), validity and nearness to a COG pixel edge of a tile's pixel centres,
    looked up in the full-resolution COG."""
    left, _, right, top = TMS.xy_bounds(x, y, z)
    res = (right - left) / size
    grid_x, grid_y = np.meshgrid(left + (np.arange(size) + 0.5) * res, top - (np.arange(size) + 0.5) * res)
    with rasterio.open(url) as src:
        xs, ys = Transformer.from_crs(3857, src.crs, always_xy=True).transform(grid_x, grid_y)
        cols, rows = ~src.transform @ (xs, ys)
        edge = np.minimum(np.abs(rows - np.round(rows)), np.abs(cols - np.round(cols))) < EDGE_PX
        rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
        inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
        raw = src.read(1)[rows.clip(0, src.height - 1), cols.clip(0, src.width - 1)]
        valid = inside & (raw != src.nodata)
        return raw * src.scales[0] + src.offsets[0], valid, edge


def expected_colours(layer: Layer, values: np.ndarray) -> np.ndarray:
    """RGB each value is drawn in: its class colour, or its place between vmin and vmax in the colour map."""
    if layer.kind == "classes":
        table = layer.colour_table()
        return np.array([table.get(int(v), (0, 0, 0, 0))[:3] for v in values.ravel()]).reshape(*values.shape, 3)
    colours = np.array([cmap.get(layer.colormap)[i][:3] for i in range(256)])
    index = np.floor((np.clip(values, layer.vmin, layer.vmax) - layer.vmin) / (layer.vmax - layer.vmin) * 255)
    return colours[index.astype(int)]


def layer_tiles(layer: Layer, zoom: int) -> list[morecantile.Tile]:
    return list(TMS.tiles(*layer.bounds, zooms=[zoom]))


@pytest.mark.parametrize("name", ["soc_g_kg", "soc_g_kg_std", "input_missing"])
@pytest.mark.parametrize("extra_zoom", [0, 2])
def test_tile_pixels_are_the_cog_values(layers, published_map, name: str, extra_zoom: int) -> None:
    layer = layers[name]
    zoom = layer.maxzoom + extra_zoom
    drawn = 0
    for t in layer_tiles(layer, zoom):
        png = render_tile(layer, t.x, t.y, t.z)
        assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
        rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
        values, valid, edge = expected_tile(published_map.cog(name), t.x, t.y, t.z)
        shown = rgba[..., 3] > 0
        # Nodata and outside are transparent, data opaque.
        assert ((shown == valid) | edge).all(), f"{name} {t}: transparency differs from the COG's nodata"
        both = shown & valid
        want = expected_colours(layer, values)[both]
        got = rgba[..., :3][both].astype(int)
        if layer.kind == "classes":
            agree = (got == want).all(axis=1)
        else:  # the colour of the value's index, or a neighbour's (float rounding at index boundaries)
            colours = np.array([cmap.get(layer.colormap)[i][:3] for i in range(256)])
            index = np.abs(got[:, None, :] - colours[None]).sum(axis=2).argmin(axis=1)
            agree = np.abs(colours[index] - want).sum(axis=1) == 0
            span = (layer.vmax - layer.vmin) / 255
            expected_index = np.floor((np.clip(values[both], layer.vmin, layer.vmax) - layer.vmin) / span)
            agree |= np.abs(index - expected_index) <= 1
        wrong = ~agree & ~edge[both]
        assert not wrong.any(), f"{name} {t}: {int(wrong.sum())} of {agree.size} pixels in other colours"
        drawn += int(both.sum())
    assert drawn > 1000, f"{name}: only {drawn} data pixels drawn at zoom {zoom}"


def test_tile_outside_the_map_is_none_and_scale_spans_the_values(layers, published_map) -> None:
    soc = layers["soc_g_kg"]
    assert render_tile(soc, 0, 0, soc.maxzoom) is None
    with rasterio.open(published_map.cog("soc_g_kg")) as src:
        raw = src.read(1)
        values = raw[raw != src.nodata] * src.scales[0]
    assert soc.unit == "g/kg" and soc.decimals == 1
    assert values.min() <= soc.vmin < soc.vmax <= values.max()
    np.testing.assert_allclose([soc.vmin, soc.vmax], np.percentile(values, [2, 98]), atol=1.5)
    missing = layers["input_missing"]
    assert missing.kind == "classes" and set(missing.classes) == {0, 1}


def test_point_values_are_full_resolution_cog_values(layers, published_map) -> None:
    west, south, east, north = layers["soc_g_kg"].bounds
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(west, east, 60), rng.uniform(south, north, 60)
    checked = 0
    for a, b in zip(lon, lat, strict=True):
        for name, layer in layers.items():
            want = cog_value(published_map.cog(name), a, b)
            got = point_value(layer, a, b)
            if want is None:
                assert got is None, f"{name} at {a}, {b}: {got} where the COG has nodata"
            else:
                assert got == pytest.approx(want, abs=1e-4), f"{name} at {a}, {b}"
                checked += 1
    assert checked > 80
    outside = point_values(list(layers.values()), west - 1.0, north + 1.0)
    assert [v["value"] for v in outside] == [None] * len(layers)
