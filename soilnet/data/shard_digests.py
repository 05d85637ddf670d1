"""Per-shard content digests of a cube variable: recorded as each shard is written, read in one request.

A writer records the digest of the values it wrote into each shard (`DigestRecorder.record`): one
tiny object ``<cube>/<variable>/_digests/<r>.<c>`` per shard (shard row and column), race-free
between concurrent writers and kept when a write is killed. When the cube is marked complete its
writer folds them (`consolidate_digests`) into ``<cube>/<variable>/_digests.npy`` (inside the array's folder, which Zarr
never lists, so the cube stays a plain Zarr group): a
(shard rows, shard cols, 16) uint8 array, zeros where no shard was ever written (all fill value);
the folded objects are then deleted, so a later partial rewrite folds only what it wrote.

A reader (the map job's change detection) loads that one object (`load_digests`) and knows which
shards changed without reading a pixel. A shard only partly covered by a write gets a fresh random
digest (it counts as changed: safe, never silently stale). A cube without the index (written
before digests existed, or by a path that records none) has none, and readers fall back to hashing
the data they read.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import zarr

from soilnet import storage

log = logging.getLogger(__name__)

FOLDER = "_digests"
#: The variables whose shards are digested: what a map reads (raster ``bands``, ``climate``).
DIGESTED = ("bands", "climate")
INDEX = "_digests.npy"
#: Bytes per digest (BLAKE2b-128).
DIGEST_BYTES = 16


def digest_of(values: np.ndarray) -> bytes:
    """BLAKE2b-128 of an array's shape, dtype and bytes."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    h.update(f"{values.shape}{values.dtype.str}".encode())
    h.update(np.ascontiguousarray(values).tobytes())
    return h.digest()


def index_url(cube_url: str, variable: str) -> str:
    """The consolidated digest index of one variable."""
    return storage.join(cube_url, variable, INDEX)


def _pending_url(cube_url: str, variable: str) -> str:
    return storage.join(cube_url, variable, FOLDER)


@dataclass(frozen=True)
class ShardGrid:
    """How a variable's trailing (y, x) axes are cut into shards: shard side and the array's size."""

    shard: int
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        """Shard rows and columns."""
        return -(-self.height // self.shard), -(-self.width // self.shard)

    def covering(self, row0: int, col0: int, height: int, width: int) -> tuple[slice, slice]:
        """Shard rows and columns a pixel window touches (clipped to the array)."""
        r0, c0 = max(row0, 0), max(col0, 0)
        r1, c1 = min(row0 + height, self.height), min(col0 + width, self.width)
        if r0 >= r1 or c0 >= c1:
            return slice(0, 0), slice(0, 0)
        return slice(r0 // self.shard, (r1 - 1) // self.shard + 1), slice(c0 // self.shard, (c1 - 1) // self.shard + 1)


class DigestRecorder:
    """Records the digests of shards a writer wrote into one variable of one cube (thread-safe)."""

    def __init__(self, cube_url: str, variable: str, grid: ShardGrid) -> None:
        self.cube_url, self.variable, self.grid = cube_url, variable, grid
        self.written: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()

    def record(self, row0: int, col0: int, values: np.ndarray) -> None:
        """Record every shard of a block just written at (row0, col0); ``values`` is (..., h, w) as stored."""
        s, g = self.grid.shard, self.grid
        h, w = values.shape[-2:]
        rows, cols = g.covering(row0, col0, h, w)
        for r in range(rows.start, rows.stop):
            for c in range(cols.start, cols.stop):
                y0, x0 = r * s, c * s
                y1, x1 = min(y0 + s, g.height), min(x0 + s, g.width)
                whole = row0 <= y0 and col0 <= x0 and row0 + h >= y1 and col0 + w >= x1
                part = values[..., y0 - row0 : y1 - row0, x0 - col0 : x1 - col0] if whole else None
                digest = digest_of(part) if part is not None else os.urandom(DIGEST_BYTES)
                url = storage.join(_pending_url(self.cube_url, self.variable), f"{r}.{c}")
                what = f"{self.cube_url}: cannot record the digest of shard {r}.{c}"
                with storage.writing(what), storage.open_file(url, "wb") as f:
                    f.write(digest)
                with self._lock:
                    self.written[(r, c)] = digest


def load_digests(cube_url: str, variable: str) -> np.ndarray | None:
    """The (shard rows, shard cols, 16) digest index of a variable, or None when the cube has none."""
    url = index_url(cube_url, variable)
    try:
        with storage.open_file(url, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    index = np.load(io.BytesIO(data), allow_pickle=False)
    if index.ndim != 3 or index.shape[2] != DIGEST_BYTES or index.dtype != np.uint8:
        raise ValueError(f"{url}: not a shard digest index (shape {index.shape}, dtype {index.dtype})")
    return index


def consolidate_digests(cube_url: str, variable: str, grid: ShardGrid, known: dict[tuple[int, int], bytes]) -> None:
    """Fold the pending per-shard digests into the variable's index, then delete them.

    ``known`` holds digests this process recorded (not read again); pending objects left by other or
    killed writers are read. Idempotent: a crash before the deletes only makes the next call read them again.
    """
    index = load_digests(cube_url, variable)
    if index is None or index.shape[:2] != grid.shape:
        index = np.zeros((*grid.shape, DIGEST_BYTES), dtype=np.uint8)
    loc = storage.resolve(_pending_url(cube_url, variable))
    loc.fs.invalidate_cache(loc.path)
    paths = loc.fs.find(loc.path) if loc.fs.exists(loc.path) else []
    unknown = [p for p in paths if _shard_of(p) not in known]
    fetched = loc.fs.cat(unknown) if unknown else {}
    for key, digest in [*known.items(), *((_shard_of(p), d) for p, d in fetched.items())]:
        index[key] = np.frombuffer(digest, dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, index, allow_pickle=False)
    with storage.writing(f"{cube_url}: cannot write the shard digest index of {variable!r}"):
        with storage.open_file(index_url(cube_url, variable), "wb") as f:
            f.write(buf.getvalue())
        if paths:
            loc.fs.rm(paths)
    log.debug("%s: %d shard digests of %r consolidated", cube_url, len(paths), variable)


def grid_of(array: zarr.Array) -> ShardGrid:
    """The shard grid of a Zarr array's trailing (y, x) axes: its shards, or its chunks when unsharded."""
    side = (array.shards or array.chunks)[-1]
    return ShardGrid(int(side), int(array.shape[-2]), int(array.shape[-1]))


def consolidate_cube(cube_url: str, group: zarr.Group, recorders: Sequence[DigestRecorder] = ()) -> None:
    """Write the digest index of every digested variable of a cube (call when marking it complete)."""
    known = {r.variable: r.written for r in recorders}
    for variable in DIGESTED:
        if variable in group:
            consolidate_digests(cube_url, variable, grid_of(group[variable]), known.get(variable, {}))


def _shard_of(path: str) -> tuple[int, int]:
    r, c = path.rstrip("/").rsplit("/", 1)[-1].split(".")
    return int(r), int(c)
