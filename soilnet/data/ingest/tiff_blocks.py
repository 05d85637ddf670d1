"""The block table of a TIFF file checked against its size, from the first image directory read directly.

GDAL reads a TIFF whose ImageWidth / ImageLength disagree with the number of entries of its
TileOffsets / StripOffsets table without complaint, cutting the blocks it finds into the wrong
rows: a silently scrambled image. `block_table_problem` finds such a file by reading the first
IFD (classic TIFF or BigTIFF, either byte order) and comparing the two.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import IO

from soilnet import storage

IMAGE_WIDTH, IMAGE_LENGTH = 256, 257
STRIP_OFFSETS, SAMPLES_PER_PIXEL, ROWS_PER_STRIP, PLANAR_CONFIGURATION = 273, 277, 278, 284
TILE_WIDTH, TILE_LENGTH, TILE_OFFSETS = 322, 323, 324
#: struct codes of the integer field types a size tag may use: BYTE, SHORT, LONG, LONG8.
INT_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}
#: More entries than any real image directory holds (a TIFF defines a few dozen tags): the file is corrupt.
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class TiffDirectory:
    """The entries of one IFD: per tag its field type, count and raw value field; ``order`` is ``<`` or ``>``."""

    order: str
    entries: dict[int, tuple[int, int, bytes]]

    def count(self, tag: int) -> int:
        """Number of values of a tag (0 when absent)."""
        return self.entries[tag][1] if tag in self.entries else 0

    def value(self, tag: int, default: int | None = None) -> int:
        """The single integer value of a size tag (stored in the entry itself); ``default`` when absent."""
        if tag not in self.entries:
            if default is None:
                raise ValueError(f"tag {tag} missing")
            return default
        kind, count, field = self.entries[tag]
        code = INT_TYPES.get(kind)
        if code is None or count != 1:
            raise ValueError(f"tag {tag} is not a single integer (type {kind}, count {count})")
        return int(struct.unpack_from(self.order + code, field)[0])


def read_first_ifd(f: IO[bytes]) -> TiffDirectory:
    """The first image directory of a TIFF file open for binary reading."""
    header = f.read(16)
    order = {b"II": "<", b"MM": ">"}.get(header[:2])
    if order is None:
        raise ValueError("not a TIFF file (no II/MM byte order mark)")
    magic = struct.unpack_from(order + "H", header, 2)[0]
    if magic == 42:
        offset, count_fmt, entry_fmt, value_size = struct.unpack_from(order + "I", header, 4)[0], "H", "HHI", 4
    elif magic == 43:
        offset, count_fmt, entry_fmt, value_size = struct.unpack_from(order + "Q", header, 8)[0], "Q", "HHQ", 8
    else:
        raise ValueError(f"not a TIFF file (magic number {magic})")
    f.seek(offset)
    (n,) = struct.unpack(order + count_fmt, f.read(struct.calcsize(order + count_fmt)))
    if n > MAX_ENTRIES:
        raise ValueError(f"{n} directory entries")
    entry_size = struct.calcsize(order + entry_fmt) + value_size
    raw = f.read(n * entry_size)
    entries = {}
    for i in range(n):
        tag, kind, count = struct.unpack_from(order + entry_fmt, raw, i * entry_size)
        start = i * entry_size + entry_size - value_size
        entries[tag] = (kind, count, raw[start : start + value_size])
    return TiffDirectory(order, entries)


def block_table_problem(url: str) -> str | None:
    """What is wrong with the block table of the TIFF at ``url`` (size, blocks and offsets disagree), or None."""
    try:
        with storage.open_file(url, "rb") as f:
            ifd = read_first_ifd(f)
        width, height = ifd.value(IMAGE_WIDTH), ifd.value(IMAGE_LENGTH)
        planes = ifd.value(SAMPLES_PER_PIXEL, 1) if ifd.value(PLANAR_CONFIGURATION, 1) == 2 else 1
        if TILE_OFFSETS in ifd.entries:
            block_w, block_h, table = ifd.value(TILE_WIDTH), ifd.value(TILE_LENGTH), "TileOffsets"
            found = ifd.count(TILE_OFFSETS)
        else:
            block_w, block_h, table = width, min(ifd.value(ROWS_PER_STRIP, height), height), "StripOffsets"
            found = ifd.count(STRIP_OFFSETS)
    except (ValueError, struct.error) as exc:
        return f"unreadable TIFF image directory ({exc})"
    if min(width, height, block_w, block_h) <= 0:
        return f"TIFF image directory declares an empty size or block ({width} x {height} px, {block_w} x {block_h})"
    expected = math.ceil(width / block_w) * math.ceil(height / block_h) * planes
    if found != expected:
        return (
            f"TIFF {table} lists {found} blocks but a {width} x {height} px image in {block_w} x {block_h} px "
            f"blocks has {expected}: its ImageWidth/ImageLength or block table are wrong (corrupt file?)"
        )
    return None
