"""The region polygon: read from GeoJSON, projected onto a grid, and intersected with its tiles."""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize

from soilnet import storage
from soilnet.data.grid import Grid

#: Largest edge length (degrees) kept between vertices before projecting; longer edges are densified.
DENSIFY_DEG = 0.05
#: Decimal digits (in pixels) a projected bound is rounded to before it is snapped to the grid.
SNAP_DIGITS = 4


class RegionError(ValueError):
    """The region GeoJSON is unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class Region:
    """Polygons in WGS84 lon/lat: each polygon is a list of rings, each ring an (n, 2) array."""

    source: str
    polygons: tuple[tuple[np.ndarray, ...], ...]

    def geojson(self) -> dict[str, Any]:
        """The region as one GeoJSON MultiPolygon geometry."""
        return {
            "type": "MultiPolygon",
            "coordinates": [[ring.tolist() for ring in polygon] for polygon in self.polygons],
        }

    def projected(self, epsg: int) -> list[dict[str, Any]]:
        """GeoJSON polygons in ``epsg`` with edges densified so they follow the projection."""
        to_grid = Transformer.from_crs(4326, epsg, always_xy=True)
        out = []
        for polygon in self.polygons:
            rings = []
            for ring in polygon:
                dense = _densify(ring, DENSIFY_DEG)
                x, y = to_grid.transform(dense[:, 0], dense[:, 1])
                rings.append(np.column_stack([x, y]).tolist())
            out.append({"type": "Polygon", "coordinates": rings})
        return out


def _densify(ring: np.ndarray, step: float) -> np.ndarray:
    """Insert vertices so that no edge of the ring is longer than ``step``."""
    points = [ring[:1]]
    for a, b in itertools.pairwise(ring):
        n = max(1, math.ceil(float(np.hypot(*(b - a))) / step))
        t = np.arange(1, n + 1, dtype=np.float64)[:, None] / n
        points.append(a + (b - a) * t)
    return np.concatenate(points)


def _polygons_of(geometry: Any, where: str) -> list[Any]:
    """The polygons (each a list of rings) of a Polygon or MultiPolygon geometry object."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        raise RegionError(f"{where}: geometry type {kind!r} is not a Polygon or MultiPolygon")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or not coords:
        raise RegionError(f"{where}: the {kind} has no coordinates (expected a non-empty list)")
    polygons = [coords] if kind == "Polygon" else coords
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise RegionError(f"{where}: a polygon of the {kind} is not a non-empty list of rings")
    return polygons


def _geometries_of(tree: dict[str, Any], where: str) -> list[Any]:
    """The geometry objects of a FeatureCollection, a Feature or a bare geometry."""
    kind = tree.get("type")
    if kind == "FeatureCollection":
        features = tree.get("features")
        if not isinstance(features, list) or not features:
            raise RegionError(f"{where}: the FeatureCollection has no features (expected a non-empty list)")
        for i, feature in enumerate(features):
            if not isinstance(feature, dict):
                raise RegionError(f"{where}: feature {i} is not a GeoJSON object")
        return [f.get("geometry") or {} for f in features]
    if kind == "Feature":
        return [tree.get("geometry") or {}]
    return [tree]


def _ring(coords: Any, where: str) -> np.ndarray:
    try:
        ring = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise RegionError(f"{where}: ring coordinates are not numbers") from exc
    if ring.ndim != 2 or ring.shape[1] < 2 or ring.shape[0] < 4:
        raise RegionError(f"{where}: a ring needs at least 4 [lon, lat] positions, got shape {ring.shape}")
    ring = ring[:, :2]
    if not np.all(np.isfinite(ring)):
        raise RegionError(f"{where}: ring coordinates contain NaN or infinity")
    if np.any(np.abs(ring[:, 0]) > 180) or np.any(np.abs(ring[:, 1]) > 90):
        raise RegionError(f"{where}: coordinates are not WGS84 lon/lat (|lon| <= 180, |lat| <= 90)")
    if not np.array_equal(ring[0], ring[-1]):
        ring = np.vstack([ring, ring[:1]])
    if _area(ring) == 0.0:
        raise RegionError(f"{where}: a ring encloses no area (its positions are repeated or on one line)")
    return ring


def _area(ring: np.ndarray) -> float:
    """Absolute planar area of a closed ring in square degrees (shoelace formula)."""
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))) / 2


def region_from_geojson(tree: dict[str, Any], where: str) -> Region:
    """A `Region` from a parsed GeoJSON Feature, FeatureCollection or (Multi)Polygon geometry."""
    if not isinstance(tree, dict):
        raise RegionError(f"{where}: expected a GeoJSON object, got {type(tree).__name__}")
    polygons = [
        tuple(_ring(ring, where) for ring in polygon)
        for geometry in _geometries_of(tree, where)
        for polygon in _polygons_of(geometry, where)
    ]
    if not polygons:
        raise RegionError(f"{where}: no polygon found")
    return Region(source=where, polygons=tuple(polygons))


def load_region(url: str | os.PathLike[str]) -> Region:
    """Read the region polygon(s) from a GeoJSON file at a local path or URL."""
    where = os.fspath(url)
    with storage.open_file(where, "rb") as f:
        raw = f.read()
    try:
        tree = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegionError(f"{where}: not valid GeoJSON ({exc})") from exc
    return region_from_geojson(tree, where)


def region_grid(region: Region, epsg: int, res: float) -> Grid:
    """The grid of ``res`` pixels in ``epsg`` covering the region, snapped to multiples of ``res``."""
    xs, ys = [], []
    for polygon in region.projected(epsg):
        outer = np.asarray(polygon["coordinates"][0])
        xs.append(outer[:, 0])
        ys.append(outer[:, 1])
    x, y = np.concatenate(xs), np.concatenate(ys)
    # Rounding to SNAP_DIGITS first keeps round-trip noise (4299999.9999 m) from adding a pixel.
    west = math.floor(round(x.min() / res, SNAP_DIGITS)) * res
    north = math.ceil(round(y.max() / res, SNAP_DIGITS)) * res
    width = max(1, math.ceil(round((x.max() - west) / res, SNAP_DIGITS)))
    height = max(1, math.ceil(round((north - y.min()) / res, SNAP_DIGITS)))
    return Grid.from_origin(epsg, west, north, res, width, height)


@dataclass(frozen=True)
class Tile:
    """One export tile: its grid index (row, col) and pixel window in the full grid."""

    row: int
    col: int
    row0: int
    col0: int
    height: int
    width: int

    @property
    def name(self) -> str:
        """The tile's name by grid index, e.g. ``r0003_c0012``."""
        return f"r{self.row:04d}_c{self.col:04d}"


def touched_tile_mask(grid: Grid, tile_px: int, shapes: list[dict[str, Any]] | None) -> np.ndarray:
    """(tile rows, tile cols) bool: tiles of ``tile_px`` pixels that touch the polygons ``shapes`` (in the
    grid's CRS, `Region.projected`); every tile when ``shapes`` is None."""
    n_rows, n_cols = math.ceil(grid.height / tile_px), math.ceil(grid.width / tile_px)
    if shapes is None:
        return np.ones((n_rows, n_cols), dtype=bool)
    a, _, c, _, e, f = grid.transform
    tile_transform = Affine(a * tile_px, 0.0, c, 0.0, e * tile_px, f)
    touched = rasterize(
        [(polygon, 1) for polygon in shapes],
        out_shape=(n_rows, n_cols),
        transform=tile_transform,
        all_touched=True,
        fill=0,
        dtype="uint8",
    )
    return touched.astype(bool)


def region_tiles(grid: Grid, tile_px: int, region: Region) -> list[Tile]:
    """Row-major tiles of ``tile_px`` pixels a side that touch the region; others are skipped."""
    touched = touched_tile_mask(grid, tile_px, region.projected(grid.epsg))
    tiles = []
    for row0, col0, height, width in grid.tiles(tile_px):
        row, col = row0 // tile_px, col0 // tile_px
        if touched[row, col]:
            tiles.append(Tile(row, col, row0, col0, height, width))
    return tiles
