"""Export requests: one Earth Engine GeoTIFF export task per tile of a grid.

Each task exports exactly the tile's pixel window of the grid: ``crs`` and the tile's
``crsTransform`` (the grid transform shifted to the tile's corner) with ``dimensions``
``WIDTHxHEIGHT``, which Earth Engine turns into the tile rectangle in that projection, so tiles
land pixel-aligned on the cube grid with no resampling afterwards. Files are Cloud-Optimized
GeoTIFFs with a declared nodata value and one file per tile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import ee

from soilnet.data.grid import Grid
from soilnet.data.region import Tile

#: GeoTIFF nodata of float exports (reflectance, indices, terrain, climate): outside every band's range.
FLOAT_NODATA = -32768.0
#: Earth Engine limits a task description to 100 characters.
MAX_DESCRIPTION = 100


@dataclass(frozen=True)
class Destination:
    """Where tiles land: a Cloud Storage bucket and prefix, or a Google Drive folder."""

    kind: Literal["cloud_storage", "drive"]
    bucket: str | None = None
    prefix: str = ""
    folder: str | None = None

    def file_prefix(self, key: str) -> str:
        """The export's fileNamePrefix of a tile key (Drive folders are flat: no slashes)."""
        if self.kind == "drive":
            return key.replace("/", "_")
        return "/".join(p for p in (self.prefix.strip("/"), key) if p)

    def root(self) -> str:
        """The URL every landed GeoTIFF of this destination lies under."""
        if self.kind == "drive":
            return f"gdrive://{self.folder}"
        return "/".join(p for p in (f"gs://{self.bucket}", self.prefix.strip("/")) if p)

    def url(self, key: str) -> str:
        """The URL of the landed GeoTIFF of a tile key."""
        if self.kind == "drive":
            return f"gdrive://{self.folder}/{self.file_prefix(key)}.tif"
        return f"gs://{self.bucket}/{self.file_prefix(key)}.tif"


@dataclass(frozen=True)
class ExportRequest:
    """One tile's export: its manifest key, tile, landing URL and the unstarted Earth Engine task."""

    key: str
    product: str
    tile: Tile
    url: str
    task: Any = field(repr=False, compare=False)


def tile_key(product: str, period: str, tile: Tile) -> str:
    """Manifest key and file stem of a tile, e.g. ``landsat/2018/r0003_c0012``."""
    return f"{product}/{period}/{tile.name}"


def tile_pixel_grid(grid: Grid, tile: Tile) -> dict[str, Any]:
    """The export pixel grid of a tile: crs, crsTransform of its corner, and dimensions."""
    window = grid.window(tile.row0, tile.col0, tile.height, tile.width)
    return {
        "crs": grid.crs,
        "crsTransform": list(window.transform),
        "dimensions": f"{tile.width}x{tile.height}",
    }


def export_task(
    image: ee.Image,
    destination: Destination,
    key: str,
    pixel_grid: dict[str, Any],
    *,
    nodata: float,
    max_pixels: int,
    file_px: int,
) -> ee.batch.Task:
    """An unstarted GeoTIFF export task of ``image`` on ``pixel_grid`` to ``destination``."""
    options: dict[str, Any] = {
        "description": f"soilnet_{key.replace('/', '_')}"[:MAX_DESCRIPTION],
        "fileNamePrefix": destination.file_prefix(key),
        "maxPixels": max_pixels,
        "fileDimensions": file_px,
        "fileFormat": "GeoTIFF",
        "formatOptions": {"cloudOptimized": True, "noData": nodata},
        **pixel_grid,
    }
    if destination.kind == "drive":
        return ee.batch.Export.image.toDrive(image, folder=destination.folder, **options)
    return ee.batch.Export.image.toCloudStorage(image, bucket=destination.bucket, **options)


def build_requests(
    product: str,
    period: str,
    image: ee.Image,
    grid: Grid,
    tiles: list[Tile],
    destination: Destination,
    *,
    nodata: float,
    max_pixels: int,
    file_px: int,
) -> list[ExportRequest]:
    """One export request per tile of ``image`` on ``grid``."""
    requests = []
    for tile in tiles:
        key = tile_key(product, period, tile)
        task = export_task(
            image,
            destination,
            key,
            tile_pixel_grid(grid, tile),
            nodata=nodata,
            max_pixels=max_pixels,
            file_px=file_px,
        )
        requests.append(ExportRequest(key=key, product=product, tile=tile, url=destination.url(key), task=task))
    return requests
