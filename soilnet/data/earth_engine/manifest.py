"""The export manifest: one JSON file at a URL recording each tile's export state.

A rerun reads it to skip tiles already completed and to keep polling tasks started by an
earlier run; the raster / climate ingest reads it for the list of landed GeoTIFFs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Literal

from soilnet import storage

TileState = Literal["pending", "running", "completed", "failed"]
VERSION = 1


class ManifestError(ValueError):
    """The manifest file is unreadable; the message names the URL."""


@dataclass
class TileRecord:
    """The export state of one tile."""

    key: str
    product: str
    row: int
    col: int
    url: str
    state: TileState = "pending"
    task_id: str | None = None
    attempts: int = 0
    error: str | None = None
    destination_uris: list[str] = field(default_factory=list)


class Manifest:
    """Tile records keyed by tile key (``product/period/rRRRR_cCCCC``), saved as JSON at ``url``."""

    def __init__(self, url: str, records: dict[str, TileRecord] | None = None) -> None:
        self.url = url
        self.records: dict[str, TileRecord] = dict(records or {})

    @classmethod
    def load(cls, url: str | os.PathLike[str]) -> Manifest:
        """The manifest at ``url``, or an empty one if no file exists yet."""
        where = os.fspath(url)
        if not storage.exists(where):
            return cls(where)
        with storage.open_file(where, "rb") as f:
            raw = f.read()
        try:
            tree = json.loads(raw)
            records = {r["key"]: TileRecord(**r) for r in tree["tiles"]}
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise ManifestError(f"{where}: not a soilnet export manifest ({exc!r})") from exc
        return cls(where, records)

    def save(self) -> None:
        """Write the manifest (to a temporary name first, then moved over the old file)."""
        body = {"version": VERSION, "tiles": [asdict(r) for r in self.records.values()]}
        tmp = self.url + ".tmp"
        with storage.open_file(tmp, "wb") as f:
            f.write(json.dumps(body, indent=1).encode())
        loc = storage.resolve(tmp)
        loc.fs.mv(loc.path, storage.resolve(self.url).path)

    def record(self, key: str, product: str, row: int, col: int, url: str) -> TileRecord:
        """The record of a tile, created as pending if the manifest has none."""
        if key not in self.records:
            self.records[key] = TileRecord(key=key, product=product, row=row, col=col, url=url)
        return self.records[key]

    def landed(self, product: str | None = None) -> list[TileRecord]:
        """Completed tiles (of one product, or all), in key order."""
        done = [r for r in self.records.values() if r.state == "completed"]
        return sorted((r for r in done if product is None or r.product == product), key=lambda r: r.key)

    def counts(self) -> dict[str, int]:
        """Number of tiles per state."""
        out = {state: 0 for state in ("pending", "running", "completed", "failed")}
        for r in self.records.values():
            out[r.state] += 1
        return out
