"""Resumable ingest bookkeeping kept under the cube: ``_ingest/`` (a Zarr subgroup) plus one marker per block.

The subgroup's attributes hold the ingest's fingerprint (inputs, grid, bands, settings) and whether
it completed; the cube itself is marked complete (`soilnet.data.zarr_group.mark_complete`) at the same
time. A block's marker object ``_ingest/done/<key>`` is written only after the block's data, so an
interrupted ingest leaves an incomplete cube (refused by read-only opens) whose finished blocks a
rerun skips. One marker per block (not one growing list) keeps each update O(1), lets concurrent
writers share a cube, and costs one LIST to resume.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import zarr

from soilnet import storage
from soilnet.data.shard_digests import consolidate_cube
from soilnet.data.zarr_group import COMPLETE, CubeExistsError, mark_complete, open_group

log = logging.getLogger(__name__)

GROUP = "_ingest"


class IngestProgress:
    """Completed block keys of one ingest into one cube (opened writable, with its ``_ingest`` subgroup)."""

    def __init__(self, cube_url: str, cube_group: zarr.Group) -> None:
        self.cube_url = cube_url
        self.cube_group = cube_group
        self.group: zarr.Group = cube_group[GROUP]  # type: ignore[assignment]
        self._done_url = storage.join(cube_url, GROUP, "done")

    @classmethod
    def start(cls, cube_url: str, cube_group: zarr.Group, fingerprint: dict[str, Any]) -> IngestProgress:
        """Begin bookkeeping in a freshly created cube."""
        cube_group.create_group(GROUP, attributes={"fingerprint": fingerprint, "complete": False})
        return cls(cube_url, cube_group)

    @classmethod
    def resume(cls, cube_url: str, cube_group: zarr.Group, fingerprint: dict[str, Any]) -> IngestProgress:
        """Continue the ingest that created an existing cube; refuses a cube made from other inputs."""
        if GROUP not in cube_group:
            raise CubeExistsError(
                f"{cube_url}: a cube already exists here and was not made by a file ingest "
                "(use --overwrite to replace it)"
            )
        group = cube_group[GROUP]
        before = json.loads(_canonical(group.attrs.get("fingerprint", {})))
        fingerprint = json.loads(_canonical(fingerprint))
        if before != fingerprint:
            changed = sorted(k for k in {*before, *fingerprint} if before.get(k) != fingerprint.get(k))
            raise CubeExistsError(
                f"{cube_url}: a cube already exists here from an ingest with different {', '.join(changed)} "
                "(use --overwrite to replace it)"
            )
        return cls(cube_url, cube_group)

    @property
    def complete(self) -> bool:
        """True once every block has been written."""
        return bool(self.group.attrs.get("complete", False))

    def done(self) -> set[str]:
        """Keys of the blocks already written (one LIST of the marker prefix)."""
        loc = storage.resolve(self._done_url)
        loc.fs.invalidate_cache(loc.path)
        if not loc.fs.exists(loc.path):
            return set()
        return {p.rstrip("/").rsplit("/", 1)[-1] for p in loc.fs.ls(loc.path, detail=False)}

    def mark(self, key: str) -> None:
        """Record that a block's data is written (call only after the write returned)."""
        marker = storage.join(self._done_url, key)
        with storage.writing(f"{self.cube_url}: cannot mark block {key} done"), storage.open_file(marker, "wb") as f:
            f.write(b"")

    def finish(self) -> None:
        """Flag the ingest, and with it the cube, as complete."""
        with storage.writing(f"{self.cube_url}: cannot mark the ingest complete"):
            consolidate_cube(self.cube_url, self.cube_group)
            self.group.attrs["complete"] = True
            mark_complete(self.cube_group)
        log.info("%s: ingest complete", self.cube_url)


def _canonical(tree: dict[str, Any]) -> str:
    return json.dumps(tree, sort_keys=True, default=str)


def half_created(cube_url: str, kind: str) -> bool:
    """True if the cube of ``kind`` at ``cube_url`` is an empty shell: its creation was interrupted before any
    ingest began in it (never marked complete, no ``_ingest``), so an ingest may create it again."""
    group, meta = open_group(cube_url, kind, writable=True)
    return meta.get(COMPLETE) is False and GROUP not in group


def is_complete(cube_group: zarr.Group) -> bool:
    """True if a cube is not marked incomplete and, when made by a file ingest, its ingest ran to the end."""
    if cube_group.attrs.get(COMPLETE) is False:
        return False
    return GROUP not in cube_group or bool(cube_group[GROUP].attrs.get("complete", False))
