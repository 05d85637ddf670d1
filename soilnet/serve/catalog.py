"""The layers a map published, found from its STAC items (or its ``cog/`` folder when it has none).

A map job writes ``stac/<layer>.json`` and the layer's raster under ``cog/`` (a VRT mosaic of tile
COGs, or one COG) in its output folder; every
data asset of every STAC item is one layer, so layers that later map jobs add (intervals, ``di``,
``aoa``, classes) appear without changes here. An item with one data asset is named by its
``soilnet:layer`` property, an item with several by the asset keys.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any

from soilnet import storage
from soilnet.mapping.map_cube import units_of

log = logging.getLogger(__name__)


class CatalogError(ValueError):
    """The STAC or map folder names no usable layer; the message names the URL and what is wrong."""


@dataclass(frozen=True)
class LayerSource:
    """One published layer: its COG and what the STAC item says about it."""

    name: str
    url: str
    title: str
    description: str = ""
    unit: str | None = None
    class_names: dict[int, str] = field(default_factory=dict)


def _read_json(url: str) -> dict[str, Any]:
    try:
        with storage.open_file(url, "r") as f:
            tree = json.load(f)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{url}: not valid JSON ({exc})") from exc
    if not isinstance(tree, dict):
        raise CatalogError(f"{url}: a STAC document must be a JSON object")
    return tree


def _list(folder: str, suffix: str) -> list[str]:
    """URLs of the files directly in ``folder`` whose names end with ``suffix``, sorted."""
    loc = storage.resolve(folder)
    if not loc.fs.isdir(loc.path):
        return []
    names = sorted(posixpath.basename(p.rstrip("/")) for p in loc.fs.ls(loc.path, detail=False))
    return [storage.join(loc.url, n) for n in names if n.endswith(suffix)]


def _href(base: str, href: str) -> str:
    """An asset or link href resolved against the URL of the document holding it."""
    if "://" in href or href.startswith("/"):
        return href
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), href)).replace("s3:/", "s3://", 1)


def _class_names(band: dict[str, Any], asset: dict[str, Any]) -> dict[int, str]:
    classes = asset.get("classification:classes") or band.get("classification:classes") or []
    return {int(c["value"]): str(c.get("description") or c.get("name") or c["value"]) for c in classes}


def sources_of_item(url: str, item: dict[str, Any]) -> list[LayerSource]:
    """The layers of one STAC item: one per asset with the ``data`` role."""
    data = {k: a for k, a in item.get("assets", {}).items() if "data" in a.get("roles", [])}
    if not data:
        raise CatalogError(f"{url}: STAC item {item.get('id')!r} has no asset with the 'data' role")
    props = item.get("properties", {})
    out = []
    for key, asset in data.items():
        name = str(props.get("soilnet:layer", key)) if len(data) == 1 else key
        band = (asset.get("raster:bands") or [{}])[0]
        out.append(
            LayerSource(
                name=name,
                url=_href(url, asset["href"]),
                title=str(props.get("title") or name) if len(data) == 1 else name,
                description=str(asset.get("description") or props.get("description") or ""),
                unit=band.get("unit"),
                class_names=_class_names(band, asset),
            )
        )
    return out


def sources_from_stac(url: str) -> list[LayerSource]:
    """Layers of a STAC item, of every item in a folder, or of the items a catalog/collection links."""
    if not url.endswith(".json"):
        items = _list(url, ".json")
        if not items:
            raise CatalogError(f"{url}: no STAC item (*.json) in this folder")
        return [s for item in items for s in sources_from_stac(item)]
    tree = _read_json(url)
    kind = tree.get("type")
    if kind == "Feature":
        return sources_of_item(url, tree)
    if kind in ("Catalog", "Collection"):
        links = [_href(url, link["href"]) for link in tree.get("links", []) if link.get("rel") in ("item", "child")]
        if not links:
            raise CatalogError(f"{url}: STAC {kind.lower()} links no item or child")
        return [s for link in links for s in sources_from_stac(link)]
    raise CatalogError(f"{url}: not a STAC item, catalog or collection (type={kind!r})")


def sources_from_map(url: str) -> list[LayerSource]:
    """Layers of a map job's output folder: its STAC items, or its ``cog/*.tif`` files without STAC."""
    stac = storage.join(url, "stac")
    if _list(stac, ".json"):
        return sources_from_stac(stac)
    folder = storage.join(url, "cog")
    rasters = _list(folder, ".vrt") or [c for c in _list(folder, ".tif") if not c.endswith("_overview.tif")]
    if not rasters:
        raise CatalogError(f"{url}: no stac/*.json and no cog/*.vrt or *.tif here: is this a map job's output folder?")
    log.info("%s has no STAC items; layers read from %d rasters in cog/", url, len(rasters))
    names = [posixpath.splitext(posixpath.basename(c))[0] for c in rasters]
    return [LayerSource(name=n, url=c, title=n, unit=units_of(n)) for n, c in zip(names, rasters, strict=True)]


def find_sources(map_url: str | None, stac_url: str | None) -> list[LayerSource]:
    """The layers to serve, in a stable order; names must be unique."""
    sources = sources_from_map(map_url) if map_url else sources_from_stac(str(stac_url))
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CatalogError(f"{map_url or stac_url}: layer names {twice} appear more than once")
    return sources
