"""Per-tile done markers and the map manifest: what each tile and the whole map were computed from.

A marker ``<out>/tiles/<name>.json`` says the tile's layers in the map cube are complete and
were computed from inputs with ``input_hash`` (an input key, `soilnet.mapping.changes`) by a model
with ``model_hash`` under map settings with ``config_hash``, by the run ``run_id`` (a write that Ray
repeats after a lost node finds its run's marker and is skipped: each tile is written once). A killed
job leaves no marker for a tile it was writing, so a rerun recomputes exactly those. Markers are read
a tile row at a time (`read_row_markers`, one concurrent batch of small GETs), never all at once.

The manifest ``<out>/manifest.json`` is written at the end of each run: the model and config hashes,
the run id, the tiles computed and skipped, and those redone after a lost node.
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
    config_hash: str = ""
    run_id: str = ""


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


def read_row_markers(out: str, tiles: list[str]) -> dict[str, TileMarker]:
    """The markers of the named tiles that exist (one concurrent batch of GETs); unreadable ones count as absent."""
    folder = storage.resolve(markers_url(out))
    paths = {f"{folder.path}/{name}.json": name for name in tiles}
    found = folder.fs.cat(list(paths), on_error="return")
    markers = {}
    for path, data in found.items():
        if isinstance(data, BaseException):
            if not isinstance(data, FileNotFoundError):
                log.warning("ignoring unreadable tile marker %s: %s", path, data)
            continue
        try:
            marker = TileMarker(**json.loads(data))
        except (ValueError, TypeError) as exc:
            log.warning("ignoring unreadable tile marker %s: %s", path, exc)
            continue
        if marker.tile == paths[path]:
            markers[marker.tile] = marker
    return markers


def write_manifest(out: str, manifest: dict[str, object]) -> None:
    """Record what the last run computed the map from (``<out>/manifest.json``)."""
    url = storage.join(out, "manifest.json")
    with storage.writing(f"{url}: cannot write the map manifest"), storage.open_file(url, "w") as f:
        json.dump(manifest, f, sort_keys=True, indent=1)


def clear_markers(out: str) -> None:
    """Forget every finished tile (when the map cube is replaced)."""
    storage.remove(markers_url(out))
