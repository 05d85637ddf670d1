"""Georeferenced pixel grids: CRS, affine transform, size, and pixel <-> map conversions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from affine import Affine


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: EPSG code, affine transform (GDAL order a, b, c, d, e, f), size."""

    epsg: int
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"grid size must be positive, got {self.width} x {self.height}")
        a, b, _, d, e, _ = self.transform
        if b != 0 or d != 0 or a <= 0 or e >= 0:
            raise ValueError(f"grid transform {self.transform} is not north-up with square pixels")

    @classmethod
    def from_origin(cls, epsg: int, west: float, north: float, res: float, width: int, height: int) -> Grid:
        """A grid whose top-left corner is (west, north) with square pixels of ``res`` map units."""
        return cls(epsg, (res, 0.0, west, 0.0, -res, north), width, height)

    @property
    def affine(self) -> Affine:
        """The transform as an `affine.Affine`."""
        return Affine(*self.transform)

    @property
    def res(self) -> float:
        """Pixel size in map units."""
        return self.transform[0]

    @property
    def crs(self) -> str:
        """The CRS as an ``EPSG:NNNN`` string."""
        return f"EPSG:{self.epsg}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in map units."""
        a, _, c, _, e, f = self.transform
        return (c, f + e * self.height, c + a * self.width, f)

    def x_coords(self, col0: int = 0, width: int | None = None) -> np.ndarray:
        """Pixel-centre x coordinates of columns ``col0 .. col0 + width``."""
        width = self.width - col0 if width is None else width
        a, _, c = self.transform[:3]
        return c + a * (np.arange(col0, col0 + width, dtype=np.float64) + 0.5)

    def y_coords(self, row0: int = 0, height: int | None = None) -> np.ndarray:
        """Pixel-centre y coordinates of rows ``row0 .. row0 + height``."""
        height = self.height - row0 if height is None else height
        e, f = self.transform[4], self.transform[5]
        return f + e * (np.arange(row0, row0 + height, dtype=np.float64) + 0.5)

    def rowcol(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Integer (row, col) of the pixels containing map coordinates (x, y)."""
        a, _, c, _, e, f = self.transform
        col = np.floor((np.asarray(x, dtype=np.float64) - c) / a).astype(np.int64)
        row = np.floor((np.asarray(y, dtype=np.float64) - f) / e).astype(np.int64)
        return row, col

    def contains(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """Boolean mask of map coordinates that fall inside the grid."""
        row, col = self.rowcol(x, y)
        return (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)

    def window(self, row0: int, col0: int, height: int, width: int) -> Grid:
        """The sub-grid of a pixel window (may extend beyond this grid)."""
        a, b, c, d, e, f = self.transform
        return Grid(self.epsg, (a, b, c + a * col0, d, e, f + e * row0), width, height)

    def tiles(self, tile: int) -> Iterator[tuple[int, int, int, int]]:
        """Row-major (row0, col0, height, width) tiles of at most ``tile`` pixels a side."""
        for row0 in range(0, self.height, tile):
            for col0 in range(0, self.width, tile):
                yield row0, col0, min(tile, self.height - row0), min(tile, self.width - col0)

    def to_attrs(self) -> dict[str, object]:
        """JSON-serialisable attributes describing the grid."""
        return {"epsg": self.epsg, "transform": list(self.transform), "width": self.width, "height": self.height}

    @classmethod
    def from_attrs(cls, attrs: dict[str, object]) -> Grid:
        """The inverse of `to_attrs`."""
        t = tuple(float(v) for v in attrs["transform"])  # type: ignore[union-attr]
        return cls(int(attrs["epsg"]), t, int(attrs["width"]), int(attrs["height"]))  # type: ignore[arg-type]
