"""Per-tile done markers: written after a tile's data, holding the hashes it was computed from.

A marker ``<out>/tiles/<name>.json`` says the tile's layers in the map cube are complete and
were computed from inputs with ``input_hash`` by a model (and map settings) with ``model_hash``.
A killed job leaves no marker for a tile it was writing, so a rerun recomputes exactly those.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from soilnet import storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileMarker:
    """What a finished tile was computed from."""

    tile: str
    input_hash: str
    model_hash: str


def markers_url(out: str) -> str:
    """Folder of the markers under a map job's output URL."""
    return storage.join(out, "tiles")


def write_marker(out: str, marker: TileMarker) -> None:
    """Record a tile as done (call only after its data is written); a failed write is a `StorageError`."""
    url = storage.join(markers_url(out), f"{marker.tile}.json")
    with storage.writing(f"{url}: cannot mark tile {marker.tile} done"), storage.open_file(url, "w") as f:
        json.dump(asdict(marker), f, sort_keys=True)


def read_markers(out: str) -> dict[str, TileMarker]:
    """Every tile marker under ``out``, by tile name; an unreadable marker counts as not done."""
    folder = storage.resolve(markers_url(out))
    if not storage.exists(folder.url):
        return {}
    markers = {}
    for path in folder.fs.glob(f"{folder.path}/*.json"):
        try:
            with folder.fs.open(path, "r") as f:
                marker = TileMarker(**json.load(f))
        except (ValueError, TypeError, OSError) as exc:
            log.warning("ignoring unreadable tile marker %s: %s", path, exc)
            continue
        markers[marker.tile] = marker
    return markers


def clear_markers(out: str) -> None:
    """Forget every finished tile (when the map cube is replaced)."""
    storage.remove(markers_url(out))
