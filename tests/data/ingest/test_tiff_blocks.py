"""The TIFF block-table check: every layout GDAL writes passes, a size that lies about the blocks is named."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import rasterio

from soilnet.data.ingest.tiff_blocks import IMAGE_LENGTH, IMAGE_WIDTH, block_table_problem, read_first_ifd

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

LAYOUTS = {
    "tiled": {"tiled": True, "blockxsize": 16, "blockysize": 16},
    "stripped": {"tiled": False, "blockysize": 5},
    "band-interleaved": {"tiled": True, "blockxsize": 16, "blockysize": 16, "interleave": "band"},
    "bigtiff": {"tiled": True, "blockxsize": 32, "blockysize": 16, "BIGTIFF": "YES"},
    "big-endian": {"tiled": False, "blockysize": 7, "ENDIANNESS": "BIG"},
    "one-strip": {"tiled": False, "blockysize": 23},
}


def _write(path: Path, **options: object) -> str:
    data = np.arange(3 * 23 * 37, dtype=np.uint16).reshape(3, 23, 37)
    profile = {"driver": "GTiff", "width": 37, "height": 23, "count": 3, "dtype": "uint16", **options}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tiffs_gdal_writes_have_consistent_block_tables(tmp_path, layout):
    url = _write(tmp_path / f"{layout}.tif", **LAYOUTS[layout])
    assert block_table_problem(url) is None
    with open(url, "rb") as f:
        ifd = read_first_ifd(f)
    assert (ifd.value(IMAGE_WIDTH), ifd.value(IMAGE_LENGTH)) == (37, 23)


def _patch_width(url: str, width: int) -> None:
    data = bytearray(Path(url).read_bytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag == IMAGE_WIDTH:
            struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, width)
    Path(url).write_bytes(bytes(data))


def test_a_size_that_disagrees_with_the_tile_table_is_named(tmp_path):
    url = _write(tmp_path / "narrow.tif", **LAYOUTS["tiled"])
    _patch_width(url, 16)
    problem = block_table_problem(url)
    assert problem is not None and "TileOffsets lists 6 blocks" in problem and "has 2" in problem


def test_a_file_that_is_no_tiff_is_named(tmp_path):
    path = tmp_path / "junk.tif"
    path.write_bytes(b"GIF89a not a tiff at all")
    assert "no II/MM byte order mark" in (block_table_problem(str(path)) or "")
    path.write_bytes(b"II*\x00\xff\xff\xff\x7f")  # first IFD far past the end
    assert "unreadable TIFF image directory" in (block_table_problem(str(path)) or "")
