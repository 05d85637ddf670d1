"""Versioned releases of the nightly map and the ``latest`` pointer that readers follow.

Layout under the ``releases`` folder (local or s3://):

- ``<version>/``: one night's published map (``cog/``, ``stac/``, ``preview.png``; see
  `soilnet.mapping.outputs`) and ``release.json``, written last inside the folder: a folder without
  it is a night that never finished, not a release;
- ``latest.json``: the pointer ``{version, url, stac, climate_end, model, published}``, replaced in one
  write (one PUT on S3, write-and-rename on disk) only after the release validated, so a reader
  sees the previous night or the new one, never half of one;
- ``pending.json``: the map tiles recomputed since the pointed release and not published yet (nights
  the gate refused), so the next night compares them too.

Versions are UTC timestamps ``YYYYmmddTHHMMSSZ``: sorting them sorts them in time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Any

from soilnet import storage

log = logging.getLogger(__name__)

POINTER = "latest.json"
RECORD = "release.json"
PENDING = "pending.json"


class ReleaseError(ValueError):
    """A release or the pointer cannot be used; the message names the URL."""


def new_version(now: dt.datetime | None = None) -> str:
    """A version name for a release made ``now`` (UTC)."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class ReleaseStore:
    """The releases folder of one nightly map."""

    url: str

    def folder(self, version: str) -> str:
        """The folder of a release."""
        return storage.join(self.url, version)

    def _read(self, url: str) -> dict[str, Any] | None:
        try:
            with storage.open_file(url, "r") as f:
                tree = json.load(f)
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise ReleaseError(f"{url}: not valid JSON ({exc})") from exc
        if not isinstance(tree, dict):
            raise ReleaseError(f"{url}: expected a JSON object")
        return tree

    def _write(self, url: str, tree: dict[str, Any]) -> None:
        """Replace a small JSON object in one step: readers see the old or the new content."""
        text = json.dumps(tree, indent=2, sort_keys=True)
        with storage.writing(f"{url}: cannot write"):
            storage.replace_text(url, text)

    def latest(self) -> dict[str, Any] | None:
        """The pointer (what readers see), or None before the first release."""
        return self._read(storage.join(self.url, POINTER))

    def record(self, version: str) -> dict[str, Any] | None:
        """The record of a finished release, or None."""
        return self._read(storage.join(self.folder(version), RECORD))

    def versions(self) -> list[str]:
        """Finished releases (those with a record), oldest first."""
        loc = storage.resolve(self.url)
        if not loc.fs.exists(loc.path):
            return []
        loc.fs.invalidate_cache(loc.path)
        names = sorted(posixpath.basename(p.rstrip("/")) for p in loc.fs.ls(loc.path, detail=False))
        return [n for n in names if not n.endswith(".json") and self.record(n) is not None]

    def write_record(self, version: str, record: dict[str, Any]) -> None:
        """Finish a release folder: its record (call after every file of the release is written)."""
        self._write(storage.join(self.folder(version), RECORD), record)

    def point_to(self, version: str, **extra: Any) -> dict[str, Any]:
        """Move the pointer to a finished release (the last step of a publish or a rollback)."""
        record = self.record(version)
        if record is None:
            raise ReleaseError(f"{self.folder(version)}: no finished release {version!r} (known: {self.versions()})")
        pointer = {
            "version": version,
            "url": self.folder(version),
            "stac": storage.join(self.folder(version), "stac"),
            "climate_end": record.get("climate_end"),
            "model": record.get("model"),
            "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **extra,
        }
        self._write(storage.join(self.url, POINTER), pointer)
        log.info("%s now points at %s", storage.join(self.url, POINTER), version)
        return pointer

    def rollback(self, to: str | None = None) -> dict[str, Any]:
        """Point back at release ``to`` (default: the newest release older than the pointed one)."""
        current = (self.latest() or {}).get("version")
        if to is None:
            older = [v for v in self.versions() if current is None or v < current]
            if not older:
                raise ReleaseError(f"{self.url}: no release older than {current} to roll back to")
            to = older[-1]
        pointer = self.point_to(to, rolled_back_from=current)
        self.set_pending(None)  # the map cube may hold any later night: compare every tile next time
        return pointer

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` releases (never the pointed one) and unfinished nights; returns them."""
        pointed = (self.latest() or {}).get("version")
        finished = self.versions()
        keep_set = set(finished[-keep:]) | {pointed}
        loc = storage.resolve(self.url)
        folders = [posixpath.basename(p.rstrip("/")) for p in loc.fs.ls(loc.path, detail=False)]
        newest = finished[-1] if finished else ""
        doomed = [
            f
            for f in folders
            if not f.endswith(".json") and f not in keep_set and (f in finished or f < newest)  # unfinished: older
        ]
        for name in doomed:
            storage.remove(self.folder(name))
        if doomed:
            log.info("deleted %d old releases: %s", len(doomed), ", ".join(doomed))
        return doomed

    def pending(self) -> set[str] | None:
        """Tiles recomputed since the pointed release and not yet published; None: every tile."""
        tree = self._read(storage.join(self.url, PENDING))
        if tree is None:
            return set()
        return None if tree.get("all") else set(tree.get("tiles", []))

    def set_pending(self, tiles: set[str] | None) -> None:
        """Record the unpublished tiles (None: every tile)."""
        tree = {"all": True} if tiles is None else {"all": False, "tiles": sorted(tiles)}
        self._write(storage.join(self.url, PENDING), tree)
