"""Point-window store and whole-shard SSL cuts: samples bit-identical to the naive per-window zarr read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.continental_sample import ContinentalConfig, lucas_points, write_sparse_cube
from soilnet.data.point_store import open_point_store, write_point_store
from soilnet.data.raster_cube import NODATA, RasterLayout, decode, open_raster_cube
from soilnet.data.ssl_windows import ShardWindowCutter

LAYOUT = RasterLayout(inner_chunk=32, shard=128)
CFG = ContinentalConfig(width_px=4000, height_px=3000, km2_per_point=2.0, land_fraction=1.0, seed=2)


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    root = tmp_path_factory.mktemp("continental")
    points = lucas_points(CFG.model_copy(update={"window": (0, 0, 600, 900)}))
    shards = write_sparse_cube(CFG, points, str(root / "raster.zarr"), patch_px=32, layout=LAYOUT)
    return root, points, shards


def test_sparse_cube_holds_only_the_shards_of_point_windows(sparse):
    root, points, shards = sparse
    assert len(points) > 20
    shard_dir = root / "raster.zarr" / "bands" / "c" / "0"
    written = {p.relative_to(shard_dir).parts for p in shard_dir.glob("*/*")}
    assert written == {(str(r), str(c)) for r, c in shards}
    assert len(shards) < (600 // 128 + 1) * (900 // 128 + 1)
    cube = open_raster_cube(str(root / "raster.zarr"))
    far = cube.read_raw(2900, 3900, 32, 32)
    assert (far == NODATA).all()


def test_point_store_reads_equal_naive_windows(sparse, tmp_path):
    root, points, _ = sparse
    cube = open_raster_cube(str(root / "raster.zarr"))
    url = write_point_store(tmp_path / "points.zarr", cube, points, patch_px=32, points_per_shard=8)
    store = open_point_store(url)
    order = np.random.default_rng(0).permutation(len(store))[:24]
    got = store.read(order)
    for k, i in enumerate(order):
        r0, c0 = cube.window_at(points["x"].iloc[i], points["y"].iloc[i], 32)
        np.testing.assert_array_equal(got[k], cube.read_raw(r0, c0, 32, 32), err_msg=f"point {i}")
    assert store.reader.decoded_bytes == got.nbytes  # amplification 1: one chunk per window
    shards_touched = len(np.unique(order // 8))
    index_reads = shards_touched
    assert store.reader.requests == index_reads + shards_touched  # one range per shard, coalesced
    np.testing.assert_array_equal(store.read_all()[order], got)
    assert list(store.ids[order]) == list(points["id"].iloc[order])


def test_shard_cuts_equal_naive_windows(sparse):
    root, _, shards = sparse
    cube = open_raster_cube(str(root / "raster.zarr"))
    center, spread = np.linspace(0, 0.5, 14), np.linspace(0.1, 2.0, 14)
    cutter = ShardWindowCutter(cube, 32, center, spread, threads=2)
    sy, sx = shards[0]
    rows, cols = cutter.corners(sy, sx, 20, np.random.default_rng(1))
    raw = cutter.cut_raw(sy, sx, rows, cols)
    normalised = cutter.cut(sy, sx, rows, cols)
    for k, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        naive = cube.read_raw(r, c, 32, 32)
        np.testing.assert_array_equal(raw[k], naive)
        expected = (decode(naive, cube.scale, cube.offset) - center[:, None, None]) / spread[:, None, None]
        np.testing.assert_allclose(normalised[k], np.nan_to_num(expected, nan=0.0), rtol=1e-5, atol=1e-5)
    assert cutter.reader.requests == 2  # one GET per shard read


def test_empty_points_table_and_bad_stats_are_refused(sparse):
    root, _, _ = sparse
    cube = open_raster_cube(str(root / "raster.zarr"))
    with pytest.raises(ValueError, match="positive spread"):
        ShardWindowCutter(cube, 32, np.zeros(14), np.zeros(14))
    assert lucas_points(CFG.model_copy(update={"window": (0, 0, 10, 10)})).pipe(len) <= 1
    assert isinstance(lucas_points(CFG.model_copy(update={"window": (0, 0, 64, 64)})), pd.DataFrame)
