"""Change detection from metadata: which tiles a map run must compute, decided without reading a pixel.

A tile's *input key* is a SHA-256 over the content digests (`soilnet.data.shard_digests`) of every
raster shard its input window touches, halo included, and of every climate chunk under the tile's
bounding box in the climate CRS (a superset of the chunks its series come from). The shard digests
are recorded by whatever wrote the cubes (ingest, acquire landing, the demo generator) and loaded
once per job in one request each. A tile is computed when it has no done marker, or its marker holds
another model hash, config hash (`config_hash`) or input key. Cubes without digests fall back to
hashing the inputs a reader reads (`TileInputs.content_hash`): correct, but every tile is read.

Tiles are selected one tile row (a page) at a time: `TileSelector` turns a tile-row index into the
rows of the tiles to compute, reading only that row's markers, so nothing grows with the tile count.
`changed_tiles` runs it over the whole grid for a caller that only wants to know (the nightly job).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer

from soilnet.data.climate_cube import ClimateCube
from soilnet.data.raster_cube import RasterCube
from soilnet.data.region import Tile
from soilnet.data.shard_digests import ShardGrid, grid_of, load_digests
from soilnet.mapping.manifest import TileMarker, read_row_markers
from soilnet.mapping.tiling import MapGrid

#: Prefix of an input key made from shard digests (metadata only).
DIGEST_KEY = "digests:"
#: Prefix of an input key made by hashing the inputs read (cubes without digests).
CONTENT_KEY = "content:"


def config_hash(
    settings: dict[str, Any], shapes: list[dict[str, Any]] | None, raster: RasterCube, climate: ClimateCube
) -> str:
    """SHA-256 of everything besides pixel values and weights that a map's values depend on."""
    tree = {
        "settings": settings,
        "region": shapes,
        "raster": {"grid": raster.grid.to_attrs(), "bands": list(raster.band_names), "nodata": raster.nodata},
        "scale": raster.scale.tolist(),
        "offset": raster.offset.tolist(),
        "climate": {
            "grid": climate.grid.to_attrs(),
            "variables": list(climate.variables),
            "times": [str(climate.times[0]), len(climate.times)],
        },
    }
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class InputDigests:
    """The shard digest indexes of a map's two inputs (None for a cube written without digests)."""

    raster: np.ndarray | None
    raster_grid: ShardGrid
    climate: np.ndarray | None
    climate_grid: ShardGrid

    @classmethod
    def load(cls, raster: RasterCube, climate: ClimateCube) -> InputDigests:
        """Load both indexes (one small request each)."""
        return cls(
            load_digests(raster.url, "bands"),
            grid_of(raster.bands),
            load_digests(climate.url, "climate"),
            grid_of(climate.data),
        )

    @property
    def known(self) -> bool:
        """True when both cubes carry digests, so input keys need no pixel reads."""
        return self.raster is not None and self.climate is not None


class TileKeys:
    """Input keys of tiles from the digest indexes (no pixel reads)."""

    def __init__(self, grid: MapGrid, digests: InputDigests, climate: ClimateCube) -> None:
        self.grid, self.digests, self.climate_grid = grid, digests, climate.grid
        self.to_climate = Transformer.from_crs(grid.output.epsg, climate.grid.epsg, always_xy=True)

    def climate_window(self, tile: Tile) -> tuple[int, int, int, int]:
        """(row0, col0, height, width) of the climate pixels under the tile's output pixel centres (bounding box)."""
        out = self.grid.output
        xs, ys = out.x_coords(tile.col0, tile.width), out.y_coords(tile.row0, tile.height)
        x = np.concatenate([xs, xs, np.full(len(ys), xs[0]), np.full(len(ys), xs[-1])])
        y = np.concatenate([np.full(len(xs), ys[0]), np.full(len(xs), ys[-1]), ys, ys])
        rows, cols = self.climate_grid.rowcol(*self.to_climate.transform(x, y))
        return int(rows.min()), int(cols.min()), int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)

    def key(self, tile: Tile) -> str | None:
        """The tile's input key, or None when a cube has no digests."""
        d = self.digests
        if d.raster is None or d.climate is None:
            return None
        digest = hashlib.sha256()
        for index, grid, window in (
            (d.raster, d.raster_grid, self.grid.input_window(tile)),
            (d.climate, d.climate_grid, self.climate_window(tile)),
        ):
            rows, cols = grid.covering(*window)
            digest.update(f"{rows.start},{rows.stop},{cols.start},{cols.stop};".encode())
            digest.update(np.ascontiguousarray(index[rows, cols]).tobytes())
        return DIGEST_KEY + digest.hexdigest()


@dataclass(frozen=True)
class TileChange:
    """A tile to compute and why: ``new`` (no marker), ``model``, ``config``, ``input`` or ``unknown``
    (a cube without digests: the reader hashes what it reads and skips the tile if it is unchanged)."""

    tile: Tile
    reason: str
    input_key: str
    marker_key: str


@dataclass
class SelectionSpec:
    """What `TileSelector` needs (plain data, pickled to Ray actors)."""

    out: str
    grid: MapGrid
    touched: np.ndarray
    model_hash: str
    config_hash: str
    force: bool
    trust_markers: bool


def tile_rows(spec: SelectionSpec) -> int:
    """Number of tile rows (pages) of the grid."""
    return int(spec.touched.shape[0])


class TileSelector:
    """Turns a tile-row index into the tiles of that row to compute (reads that row's markers only)."""

    def __init__(self, spec: SelectionSpec, keys: TileKeys) -> None:
        self.spec, self.keys = spec, keys

    def tiles_in_row(self, row: int) -> list[Tile]:
        """The row's tiles that touch the region, in column order."""
        tile_px, out = self.spec.grid.tile_px, self.spec.grid.output
        row0 = row * tile_px
        height = min(tile_px, out.height - row0)
        return [
            Tile(row, int(col), row0, int(col) * tile_px, height, min(tile_px, out.width - int(col) * tile_px))
            for col in np.flatnonzero(self.spec.touched[row])
        ]

    def changes(self, row: int) -> Iterator[TileChange]:
        """The row's tiles that must be computed, with the reason."""
        spec = self.spec
        tiles = self.tiles_in_row(row)
        markers = read_row_markers(spec.out, [t.name for t in tiles]) if tiles and not spec.force else {}
        for tile in tiles:
            key = self.keys.key(tile) or ""
            marker = markers.get(tile.name)
            reason = _reason(marker, key, spec)
            if reason is not None:
                yield TileChange(tile, reason, key, marker.input_hash if marker is not None else "")


def _reason(marker: TileMarker | None, key: str, spec: SelectionSpec) -> str | None:
    if spec.force or marker is None:
        return "new" if marker is None else "forced"
    if marker.model_hash != spec.model_hash:
        return "model"
    if marker.config_hash != spec.config_hash:
        return "config"
    if spec.trust_markers:
        return None
    if not key:
        return "unknown"
    return None if marker.input_hash == key else "input"
