"""Shard digests: recorded by the cube writers, folded into one index, unchanged exactly when the shard is."""

from __future__ import annotations

import numpy as np
import pytest

from soilnet.data.climate_cube import create_climate_cube, finish_climate_cube, month_starts, write_climate_block
from soilnet.data.grid import Grid
from soilnet.data.raster_cube import RasterCubeWriter, RasterLayout, create_raster_cube, open_raster_cube
from soilnet.data.shard_digests import DIGEST_BYTES, digest_of, index_url, load_digests

GRID = Grid.from_origin(3035, 4_000_000.0, 3_000_000.0, 30.0, 150, 100)  # 3 x 2 shards of 64 px, ragged
LAYOUT = RasterLayout(inner_chunk=16, shard=64)


def values(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(-3000, 3000, (2, GRID.height, GRID.width)) * 1e-4).astype(np.float32)


def test_writer_records_each_shard_it_wrote_and_nothing_else(tmp_path) -> None:
    url = str(tmp_path / "raster.zarr")
    writer = create_raster_cube(url, GRID, ["SR_B1", "ndvi"], LAYOUT)
    v = values(0)
    for row0, col0, h, w in [(0, 0, 64, 64), (64, 128, 36, 22)]:  # the first and the ragged last shard
        writer.write_tile(row0, col0, v[:, row0 : row0 + h, col0 : col0 + w])
    writer.finish()
    index = load_digests(url, "bands")
    assert index.shape == (2, 3, DIGEST_BYTES)
    cube = open_raster_cube(url)
    for r, c in [(0, 0), (1, 2)]:
        stored = np.asarray(cube.bands[:, r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64])
        assert bytes(index[r, c]) == digest_of(stored)
    written = index.any(axis=2)
    assert written.sum() == 2 and written[0, 0] and written[1, 2]  # never written: zeros


def test_rewrites_change_the_digest_exactly_when_the_values_change(tmp_path) -> None:
    url = str(tmp_path / "raster.zarr")
    v = values(1)
    writer = create_raster_cube(url, GRID, ["SR_B1", "ndvi"], LAYOUT)
    for row0, col0, h, w in GRID.tiles(64):
        writer.write_tile(row0, col0, v[:, row0 : row0 + h, col0 : col0 + w])
    writer.finish()
    before = load_digests(url, "bands")
    update = RasterCubeWriter(open_raster_cube(url, writable=True))
    update.write_tile(0, 64, v[:, :64, 64:128])  # the same values again
    changed = v[:, 64:, :64].copy()
    changed[0, 5, 5] += 0.01
    update.write_tile(64, 0, changed)
    update.finish()
    after = load_digests(url, "bands")
    differs = (before != after).any(axis=2)
    assert differs.tolist() == [[False, False, False], [True, False, False]]


def test_killed_writer_digests_are_folded_by_the_next_finish(tmp_path) -> None:
    url = str(tmp_path / "raster.zarr")
    v = values(2)
    killed = create_raster_cube(url, GRID, ["SR_B1", "ndvi"], LAYOUT)
    killed.write_tile(0, 0, v[:, :64, :64])  # then the process died: no finish, no index
    assert load_digests(url, "bands") is None
    resumed = RasterCubeWriter(open_raster_cube(url, writable=True))
    resumed.write_tile(0, 64, v[:, :64, 64:128])
    resumed.finish()
    written = load_digests(url, "bands").any(axis=2)
    assert written[0, 0] and written[0, 1] and written.sum() == 2


def test_partial_climate_block_counts_as_changed(tmp_path) -> None:
    grid = Grid.from_origin(4326, -10.0, 60.0, 0.5, 8, 8)
    cube = create_climate_cube(str(tmp_path / "c.zarr"), grid, ["tmean"], month_starts("2018-01", 2))
    block = np.ones((1, 2, 8, 8), dtype=np.float32)
    chunk = cube.data.chunks[2]
    write_climate_block(cube, 0, 0, block)
    finish_climate_cube(cube)
    first = load_digests(cube.url, "climate")
    write_climate_block(cube, 0, 0, block[:, :, :1, :1])  # same value, but only part of a chunk
    finish_climate_cube(cube)
    second = load_digests(cube.url, "climate")
    assert chunk >= 8 and (first != second).any()  # a partial write cannot be digested: it counts as changed


def test_bad_index_is_a_clear_error(tmp_path) -> None:
    url = str(tmp_path / "raster.zarr")
    create_raster_cube(url, GRID, ["SR_B1"], LAYOUT).finish()
    with open(index_url(url, "bands"), "wb") as f:
        np.save(f, np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"bands/_digests.npy: not a shard digest index"):
        load_digests(url, "bands")
