"""STAC items for map outputs (projection + raster extensions, links to the MLflow run and model).

A class layer of a categorical target also uses the classification extension (v2.0.0): its data and
overview assets list ``classification:classes``, one object per class code with ``value``, ``name``
(the label as in layer names), ``title`` (the label), ``color_hint`` (its colour in the COG's colour
table) and a ``nodata`` class for 255.

Validation works offline: the core STAC 1.1.0 item schema (with GeoJSON) ships inside pystac
and is used as is; the projection (v2.0.0), raster (v1.1.0) and classification (v2.0.0) extension
schemas are not shipped, so `EXTENSION_SCHEMAS` restates the fields we write from those specs
(``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``; ``raster:bands`` of each data asset, with
``nodata``, ``data_type``, ``scale``, ``offset``, ``unit``; ``classification:classes``) and assets are
checked against it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from typing import Any

import pystac
from jsonschema import Draft7Validator
from pyproj import Transformer
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource

from soilnet import storage
from soilnet.data.grid import Grid
from soilnet.mapping.classes import CLASS_NODATA, class_colours, label_slug
from soilnet.mapping.cog import CogInfo
from soilnet.mapping.map_cube import units_of

ITEM_SCHEMA = f"https://schemas.stacspec.org/v{pystac.get_stac_version()}/item-spec/json-schema/item.json"

_NUMBER_LIST = {"type": "array", "items": {"type": "number"}}
EXTENSION_SCHEMAS: dict[str, dict[str, Any]] = {
    ProjectionExtension.get_schema_uri(): {
        "type": "object",
        "required": ["proj:code", "proj:shape", "proj:transform", "proj:bbox"],
        "properties": {
            "proj:code": {"type": ["string", "null"], "pattern": "^[A-Z]+:[0-9]+$"},
            "proj:shape": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 1}},
            "proj:transform": {**_NUMBER_LIST, "minItems": 6, "maxItems": 9},
            "proj:bbox": {**_NUMBER_LIST, "minItems": 4, "maxItems": 4},
        },
    },
    RasterExtension.get_schema_uri(): {
        "type": "object",
        "required": ["raster:bands"],
        "properties": {
            "raster:bands": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["data_type", "nodata"],
                    "properties": {
                        "data_type": {"enum": [d.value for d in DataType]},
                        "nodata": {"type": ["number", "string"]},
                        "scale": {"type": "number"},
                        "offset": {"type": "number"},
                        "unit": {"type": "string"},
                    },
                },
            }
        },
    },
    ClassificationExtension.get_schema_uri(): {
        "type": "object",
        "required": ["classification:classes"],
        "properties": {
            "classification:classes": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["value", "name"],
                    "properties": {
                        "value": {"type": "integer"},
                        "name": {"type": "string", "pattern": "^[0-9A-Za-z-_]+$"},
                        "title": {"type": "string"},
                        "color_hint": {"type": "string", "pattern": "^([0-9A-Fa-f]){6}$"},
                        "nodata": {"type": "boolean"},
                    },
                },
            }
        },
    },
}


class StacValidationError(ValueError):
    """A STAC item does not validate; the message names the item and each failing field."""


@functools.cache
def _item_validator() -> Draft7Validator:
    cache = get_local_schema_cache()
    registry = Registry().with_resources([(uri, Resource.from_contents(s)) for uri, s in cache.items()])
    return Draft7Validator(cache[ITEM_SCHEMA], registry=registry)


def validate_item(item: dict[str, Any]) -> None:
    """Validate an item dict against the core item schema and the extension fields it declares."""
    where = item.get("id", "<no id>")
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '<item>'}: {e.message}" for e in _item_validator().iter_errors(item)
    ]
    for uri in item.get("stac_extensions", []):
        schema = EXTENSION_SCHEMAS.get(uri)
        if schema is None:
            problems.append(f"stac_extensions: no offline schema for {uri}")
            continue
        validator = Draft7Validator(schema)
        target = item["properties"] if uri == ProjectionExtension.get_schema_uri() else None
        data_assets = [(k, a) for k, a in item.get("assets", {}).items() if "data" in a.get("roles", [])]
        holders = [("properties", target)] if target is not None else data_assets
        for name, holder in holders:
            problems += [f"{name}: {e.message}" for e in validator.iter_errors(holder)]
    if problems:
        raise StacValidationError(f"STAC item {where} is invalid:\n  " + "\n  ".join(problems))


@functools.cache
def _to_wgs84(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


def stac_classes(labels: tuple[str, ...]) -> list[Classification]:
    """The classification extension's classes of a class layer: one per code, then the nodata code."""
    classes = [
        Classification.create(value=code, name=label_slug(label), title=label, color_hint=colour.upper())
        for code, (label, colour) in enumerate(zip(labels, class_colours(labels), strict=True))
    ]
    return [*classes, Classification.create(value=CLASS_NODATA, name="nodata", title="no data", nodata=True)]


def _footprint(grid: Grid, n: int = 10) -> tuple[dict[str, Any], list[float]]:
    """WGS84 polygon and bbox of a grid's outline (each edge cut in ``n`` so it follows the projection)."""
    west, south, east, north = grid.bounds
    xs = [west + (east - west) * i / n for i in range(n)] + [east] * n
    xs += [east - (east - west) * i / n for i in range(n)] + [west] * n
    ys = [south] * n + [south + (north - south) * i / n for i in range(n)]
    ys += [north] * n + [north - (north - south) * i / n for i in range(n)]
    lon, lat = _to_wgs84(grid.epsg).transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}, [min(lon), min(lat), max(lon), max(lat)]


def build_item(
    cog: CogInfo,
    grid: Grid,
    map_id: str,
    date: str,
    run_link: str | None = None,
    model_link: str | None = None,
    preview_url: str | None = None,
    tiles_url: str | None = None,
    densify: int = 10,
    description: str | None = None,
) -> pystac.Item:
    """A STAC item describing one published layer of a map (its date is the month the climate series end).

    A tiled layer's ``data`` asset is its VRT mosaic, with the ``overview`` COG beside it and the ``tiles``
    FeatureCollection of per-tile items (`write_tile_items`). ``description`` (what the layer means, e.g. the map
    cube's ``long_name``) goes into the item's properties and its data asset.
    """
    geometry, bbox = _footprint(grid, densify)
    when = dt.datetime.strptime(date, "%Y-%m").replace(tzinfo=dt.UTC)
    item = pystac.Item(
        id=f"{map_id}-{cog.layer}",
        geometry=geometry,
        bbox=bbox,
        datetime=when,
        properties={
            "soilnet:layer": cog.layer,
            "soilnet:map": map_id,
            **({"description": description} if description else {}),
        },
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = grid.crs
    proj.shape = [grid.height, grid.width]
    proj.transform = list(grid.transform)
    proj.bbox = list(grid.bounds)
    band = RasterBand.create(
        nodata=cog.nodata, data_type=DataType(cog.dtype), scale=cog.scale, offset=0.0, unit=units_of(cog.layer)
    )
    mosaic = cog.url.endswith(".vrt")
    title = f"{cog.layer} (GDAL VRT mosaic of the tile COGs)" if mosaic else cog.layer
    media = pystac.MediaType.XML if mosaic else pystac.MediaType.COG
    data = pystac.Asset(href=cog.url, media_type=media, roles=["data"], title=title, description=description)
    assets = [("data", data)]
    if cog.overview:
        title = f"{cog.layer} overview COG (1:{cog.overview_step})"
        assets.append(
            ("overview", pystac.Asset(cog.overview, title, media_type=pystac.MediaType.COG, roles=["overview"]))
        )
    for key, asset in assets:
        item.add_asset(key, asset)
        RasterExtension.ext(asset, add_if_missing=True).bands = [band]
        if cog.classes:
            ClassificationExtension.ext(asset, add_if_missing=True).classes = stac_classes(cog.classes)
    if tiles_url:
        tiles = pystac.Asset(
            tiles_url, "tile COGs (STAC items)", media_type=pystac.MediaType.GEOJSON, roles=["metadata"]
        )
        item.add_asset("tiles", tiles)
    if preview_url:
        item.add_asset("preview", pystac.Asset(href=preview_url, media_type=pystac.MediaType.PNG, roles=["overview"]))
    if run_link:
        item.add_link(pystac.Link(rel="via", target=run_link, media_type="text/html", title="MLflow run"))
    if model_link:
        item.add_link(pystac.Link(rel="derived_from", target=model_link, title="model version"))
    return item


def write_item(item: pystac.Item, url: str | os.PathLike[str]) -> str:
    """Validate and write an item as JSON; returns the URL."""
    tree = item.to_dict(include_self_link=False)
    validate_item(tree)
    where = os.fspath(url)
    with storage.open_file(where, "w") as f:
        json.dump(tree, f, indent=2)
    return where


def write_tile_items(cog: CogInfo, grid: Grid, map_id: str, date: str, url: str) -> str:
    """A GeoJSON FeatureCollection of one validated STAC item per tile COG of a layer, written item by item."""
    with storage.open_file(url, "w") as f:
        f.write('{"type": "FeatureCollection", "features": [\n')
        for i, tile in enumerate(cog.tiles):
            window = grid.window(tile.row0, tile.col0, tile.height, tile.width)
            one = CogInfo(cog.layer, tile.url, cog.dtype, cog.nodata, cog.scale, classes=cog.classes)
            item = build_item(one, window, f"{map_id}-{tile.name}", date, densify=1)  # a tile: its 4 corners
            item = item.to_dict(include_self_link=False)
            item["properties"]["soilnet:tile"] = tile.name
            validate_item(item)
            f.write((",\n" if i else "") + json.dumps(item))
        f.write("\n]}\n")
    return url
