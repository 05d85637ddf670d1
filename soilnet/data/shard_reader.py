"""Windows cut from the inner chunks of a sharded Zarr v3 array, fetched with few, concurrent range reads.

zarr 3.1 reads the chunks of a partly selected shard one after another and re-reads the shard
index on every call. For many small training windows that is the bottleneck on object storage,
so this reader talks to the store itself (obstore, on S3 or a local folder):

- each shard's index is read once per reader and kept (cubes are read-only while a job reads);
- a batch of windows is turned into the set of inner chunks it needs, each fetched once;
- chunks adjacent in a shard's bytes are merged into one range request (and, with
  ``coalesce_bytes``, chunks separated by at most that many unwanted bytes: one request per shard
  and batch when sparse windows each need a few chunks), and all requests of a batch run concurrently;
- chunks are decoded (Blosc, as written by `soilnet.data.raster_cube`) and windows cut from them; a
  window that is exactly one inner chunk is decoded straight into the output buffer (no copy);
  missing chunks and pixels outside the grid take the array's fill value (the declared nodata).

``bytes_fetched`` counts every byte the store returned, ``requests`` the GETs and
``decoded_bytes`` the uncompressed bytes of the chunks decoded (read amplification = decoded
bytes / bytes of the windows delivered).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numcodecs
import numpy as np
import obstore
import zarr
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import LocalStore, S3Store
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation

from soilnet import storage

log = logging.getLogger(__name__)

_EMPTY = np.iinfo(np.uint64).max


class UnsupportedLayoutError(ValueError):
    """The array is not a sharded layout this reader decodes (the message names the array)."""


@dataclass(frozen=True)
class ShardLayout:
    """What the reader needs to know about a sharded array."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fill_value: int | float
    inner: tuple[int, int]
    shard: tuple[int, int]
    blosc: bool
    index_crc: bool

    @property
    def chunks_per_shard(self) -> tuple[int, int]:
        """Inner chunks along y and x of one shard."""
        return self.shard[0] // self.inner[0], self.shard[1] // self.inner[1]

    @property
    def index_nbytes(self) -> int:
        """Size of a shard index (offset, length pairs, optional CRC32C)."""
        n = self.chunks_per_shard[0] * self.chunks_per_shard[1]
        return 16 * n + (4 if self.index_crc else 0)


def shard_layout(array: zarr.Array, where: str) -> ShardLayout:
    """The layout of a (..., y, x) sharded array whose leading dims are a single chunk."""
    codecs = array.metadata.codecs
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        raise UnsupportedLayoutError(f"{where}: array is not sharded (codecs {codecs})")
    sharding = codecs[0]
    inner_codecs = sharding.codecs
    if not isinstance(inner_codecs[0], BytesCodec) or not all(isinstance(c, BloscCodec) for c in inner_codecs[1:]):
        raise UnsupportedLayoutError(f"{where}: inner codecs {inner_codecs} are not bytes + blosc")
    if sharding.index_location != ShardingCodecIndexLocation.end:
        raise UnsupportedLayoutError(f"{where}: shard index is not at the end of the shard")
    dtype = np.dtype(array.dtype)
    if dtype.itemsize > 1 and inner_codecs[0].endian is not None and inner_codecs[0].endian.value != "little":
        raise UnsupportedLayoutError(f"{where}: big-endian chunks are not supported")
    inner, shard = sharding.chunk_shape, array.metadata.chunk_grid.chunk_shape
    if tuple(inner[:-2]) != tuple(array.shape[:-2]) or tuple(shard[:-2]) != tuple(array.shape[:-2]):
        raise UnsupportedLayoutError(f"{where}: leading dims {array.shape[:-2]} are split across chunks")
    return ShardLayout(
        shape=tuple(array.shape),
        dtype=dtype,
        fill_value=array.metadata.fill_value.item() if hasattr(array.metadata.fill_value, "item") else 0,
        inner=(int(inner[-2]), int(inner[-1])),
        shard=(int(shard[-2]), int(shard[-1])),
        blosc=len(inner_codecs) > 1,
        index_crc=any(isinstance(c, Crc32cCodec) for c in sharding.index_codecs),
    )


def object_store(url: str) -> LocalStore | S3Store:
    """An obstore store rooted at a local folder or ``s3://bucket/prefix`` (endpoint and retries from the
    environment, see `soilnet.storage.obstore_options`)."""
    loc = storage.resolve(url)
    if not loc.is_s3:
        return LocalStore(loc.path)
    bucket, _, prefix = loc.path.partition("/")
    return S3Store(bucket, prefix=prefix or None, **storage.obstore_options())


class ShardWindowReader:
    """Reads (…, P, P) windows of one sharded array of a cube, chunk-aware and concurrently."""

    def __init__(self, cube_url: str, array: zarr.Array, name: str, threads: int = 16, coalesce_bytes: int = 0) -> None:
        self.where = storage.join(cube_url, name)
        self.layout = shard_layout(array, self.where)
        self.store = object_store(cube_url)
        self.metadata = array.metadata
        self.name = name
        self.threads = threads
        self.coalesce_bytes = coalesce_bytes
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name=f"shard-reader-{name}", daemon=True).start()
        self.bytes_fetched = 0
        self.requests = 0
        self.decoded_bytes = 0
        self._indexes: dict[tuple[int, int], np.ndarray | None] = {}
        self._lock = threading.Lock()

    def _shard_key(self, sy: int, sx: int) -> str:
        lead = (0,) * (len(self.layout.shape) - 2)
        return f"{self.name}/{self.metadata.encode_chunk_key((*lead, sy, sx))}"

    async def _fetch_index(self, key: tuple[int, int], sem: asyncio.Semaphore) -> None:
        async with sem:
            try:
                result = await obstore.get_async(
                    self.store, self._shard_key(*key), options={"range": {"suffix": self.layout.index_nbytes}}
                )
                raw = await result.bytes_async()
            except (NotFoundError, FileNotFoundError):
                self._indexes[key] = None
                return
        self._count(len(raw))
        words = np.frombuffer(bytes(raw)[: 16 * (self.layout.index_nbytes // 16)], dtype="<u8")
        self._indexes[key] = words.reshape(*self.layout.chunks_per_shard, 2)

    async def _fetch_range(self, key: str, start: int, end: int, sem: asyncio.Semaphore) -> bytes:
        async with sem:
            data = await obstore.get_range_async(self.store, key, start=start, end=end)
        self._count(len(data))
        return bytes(data)

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_fetched += nbytes
            self.requests += 1

    async def _fetch_chunks(self, chunks: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Compressed bytes of inner chunks (global chunk coords); absent chunks are left out."""
        sem = asyncio.Semaphore(self.threads)
        cy, cx = self.layout.chunks_per_shard
        shards = sorted({(r // cy, c // cx) for r, c in chunks})
        missing = [s for s in shards if s not in self._indexes]
        await asyncio.gather(*(self._fetch_index(s, sem) for s in missing))
        jobs, plans = [], []
        for sy, sx in shards:
            index = self._indexes[(sy, sx)]
            if index is None:
                continue
            wanted = sorted(
                (int(index[r - sy * cy, c - sx * cx, 0]), int(index[r - sy * cy, c - sx * cx, 1]), (r, c))
                for r, c in chunks
                if (r // cy, c // cx) == (sy, sx) and index[r - sy * cy, c - sx * cx, 0] != _EMPTY
            )
            for run in _contiguous_runs(wanted, self.coalesce_bytes):
                start, end = run[0][0], run[-1][0] + run[-1][1]
                jobs.append(self._fetch_range(self._shard_key(sy, sx), start, end, sem))
                plans.append((start, run))
        blobs = await asyncio.gather(*jobs)
        out: dict[tuple[int, int], bytes] = {}
        for (start, run), blob in zip(plans, blobs, strict=True):
            for offset, nbytes, coords in run:
                out[coords] = blob[offset - start : offset - start + nbytes]
        return out

    def _decode(self, blob: bytes, out: np.ndarray | None = None) -> np.ndarray:
        """One inner chunk as (..., iy, ix); decoded into ``out`` (C-contiguous, that shape) when given."""
        lead = self.layout.shape[:-2]
        with self._lock:
            self.decoded_bytes += self.layout.dtype.itemsize * int(np.prod((*lead, *self.layout.inner)))
        if out is not None and self.layout.blosc:
            numcodecs.blosc.decompress(blob, out)
            return out
        raw = numcodecs.blosc.decompress(blob) if self.layout.blosc else blob
        chunk = np.frombuffer(raw, dtype=self.layout.dtype.newbyteorder("<")).reshape(*lead, *self.layout.inner)
        if out is not None:
            out[...] = chunk
        return chunk

    def read_shard(self, sy: int, sx: int) -> np.ndarray:
        """(..., shard_y, shard_x) raw values of one whole shard, fetched in one GET (absent shard: fill value).

        Chunks are decoded straight into one chunk-major buffer, then laid out as a raster in one copy.
        """
        try:
            blob = asyncio.run_coroutine_threadsafe(self._fetch_object(self._shard_key(sy, sx)), self._loop).result()
        except BaseError as exc:
            raise storage.StorageError(f"cannot read {self.where}: {exc}") from exc
        return self.decode_shard(blob)

    def decode_shard(self, blob: bytes | None) -> np.ndarray:
        """(..., shard_y, shard_x) raw values of a whole shard object's bytes (None: an absent shard)."""
        lay = self.layout
        (cy, cx), (iy, ix), lead = lay.chunks_per_shard, lay.inner, lay.shape[:-2]
        blocks = np.full((cy, cx, *lead, iy, ix), lay.fill_value, dtype=lay.dtype)
        if blob is not None:
            index = np.frombuffer(blob[len(blob) - lay.index_nbytes :][: 16 * cy * cx], dtype="<u8").reshape(cy, cx, 2)
            for r in range(cy):
                for c in range(cx):
                    offset, nbytes = int(index[r, c, 0]), int(index[r, c, 1])
                    if offset != _EMPTY:
                        self._decode(blob[offset : offset + nbytes], blocks[r, c])
        nd = len(lead)
        axes = (*range(2, 2 + nd), 0, 2 + nd, 1, 3 + nd)
        return blocks.transpose(axes).reshape(*lead, cy * iy, cx * ix)

    async def _fetch_object(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self.store, key)
            data = await result.bytes_async()
        except (NotFoundError, FileNotFoundError):
            return None
        self._count(len(data))
        return bytes(data)

    def _spans(self, row0: np.ndarray, col0: np.ndarray, size: int) -> list[tuple[int, int, int, int]]:
        height, width = self.layout.shape[-2:]
        return [
            (max(r0, 0), min(r0 + size, height), max(c0, 0), min(c0 + size, width))
            for r0, c0 in zip(row0.tolist(), col0.tolist(), strict=True)
        ]

    def chunks_of(self, row0: Sequence[int], col0: Sequence[int], size: int) -> set[tuple[int, int]]:
        """Global (row, col) of the inner chunks that windows with top-left corners (row0, col0) touch."""
        iy, ix = self.layout.inner
        chunks: set[tuple[int, int]] = set()
        for r_lo, r_hi, c_lo, c_hi in self._spans(np.asarray(row0), np.asarray(col0), size):
            if r_lo < r_hi and c_lo < c_hi:
                chunks.update(
                    (r, c)
                    for r in range(r_lo // iy, (r_hi - 1) // iy + 1)
                    for c in range(c_lo // ix, (c_hi - 1) // ix + 1)
                )
        return chunks

    def fetch_chunks(self, chunks: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Compressed bytes of inner chunks (absent ones left out): cached shard indexes, concurrent ranges."""
        try:
            return asyncio.run_coroutine_threadsafe(self._fetch_chunks(chunks), self._loop).result()
        except BaseError as exc:
            raise storage.StorageError(f"cannot read {self.where}: {exc}") from exc

    def read_windows(
        self, row0: Sequence[int], col0: Sequence[int], size: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """(N, ..., size, size) raw values of windows with top-left corners (row0, col0), into ``out`` if given."""
        return self.cut_windows(self.fetch_chunks(self.chunks_of(row0, col0, size)), row0, col0, size, out)

    def cut_windows(
        self,
        blobs: dict[tuple[int, int], bytes],
        row0: Sequence[int],
        col0: Sequence[int],
        size: int,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """(N, ..., size, size) windows decoded from compressed chunks already in memory (`fetch_chunks`).

        ``out`` (C-contiguous, that shape and the array's dtype) receives them when given.
        """
        row0, col0 = np.asarray(row0, dtype=np.int64), np.asarray(col0, dtype=np.int64)
        lay = self.layout
        iy, ix = lay.inner
        if out is None:
            out = np.empty((len(row0), *lay.shape[:-2], size, size), dtype=lay.dtype)
        spans = self._spans(row0, col0, size)
        if _one_chunk_each(row0, col0, size, lay):  # each window is its own whole chunk: decode in place
            for i, key in enumerate(zip((row0 // iy).tolist(), (col0 // ix).tolist(), strict=True)):
                if key in blobs:
                    self._decode(blobs[key], out[i])
                else:
                    out[i] = lay.fill_value
            return out
        out[...] = lay.fill_value
        decoded = {coords: self._decode(blob) for coords, blob in blobs.items()}
        for i, (r_lo, r_hi, c_lo, c_hi) in enumerate(spans):
            r0, c0 = int(row0[i]), int(col0[i])
            for r in range(r_lo // iy, (r_hi - 1) // iy + 1) if r_lo < r_hi else ():
                for c in range(c_lo // ix, (c_hi - 1) // ix + 1) if c_lo < c_hi else ():
                    block = decoded.get((r, c))
                    if block is None:
                        continue
                    y0, y1 = max(r_lo, r * iy), min(r_hi, (r + 1) * iy)
                    x0, x1 = max(c_lo, c * ix), min(c_hi, (c + 1) * ix)
                    out[i, ..., y0 - r0 : y1 - r0, x0 - c0 : x1 - c0] = block[
                        ..., y0 - r * iy : y1 - r * iy, x0 - c * ix : x1 - c * ix
                    ]
        return out


def _one_chunk_each(row0: np.ndarray, col0: np.ndarray, size: int, lay: ShardLayout) -> bool:
    """True if every window is exactly one inner chunk inside the array, and no two windows share one."""
    iy, ix = lay.inner
    height, width = lay.shape[-2:]
    return (
        (size, size) == (iy, ix)
        and not np.any(row0 % iy)
        and not np.any(col0 % ix)
        and bool(np.all((row0 >= 0) & (col0 >= 0) & (row0 + size <= height) & (col0 + size <= width)))
        and len(set(zip(row0.tolist(), col0.tolist(), strict=True))) == len(row0)
    )


def _contiguous_runs(
    wanted: list[tuple[int, int, tuple[int, int]]], gap: int = 0
) -> list[list[tuple[int, int, tuple[int, int]]]]:
    """Group (offset, nbytes, coords) sorted by offset into runs of byte ranges at most ``gap`` bytes apart."""
    runs: list[list[tuple[int, int, tuple[int, int]]]] = []
    for item in wanted:
        if runs and item[0] - (runs[-1][-1][0] + runs[-1][-1][1]) <= gap:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs
