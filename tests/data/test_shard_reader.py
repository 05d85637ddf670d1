"""Windows cut from sharded cubes equal direct zarr slices, bit for bit, on disk and on S3."""

from __future__ import annotations

import numpy as np
import pytest

from soilnet.data.demo_region import DemoConfig, generate_demo_region
from soilnet.data.grid import Grid
from soilnet.data.raster_cube import NODATA, RasterLayout, create_raster_cube, open_raster_cube
from soilnet.data.shard_reader import ShardWindowReader, UnsupportedLayoutError

LAYOUT = RasterLayout(inner_chunk=32, shard=128)


def direct(cube, r0: int, c0: int, size: int) -> np.ndarray:
    """The window sliced straight from the zarr array, padded with nodata by hand."""
    out = np.full((cube.bands.shape[0], size, size), NODATA, dtype=np.int16)
    h, w = cube.bands.shape[1:]
    ys, xs = slice(max(r0, 0), min(r0 + size, h)), slice(max(c0, 0), min(c0 + size, w))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[:, ys.start - r0 : ys.stop - r0, xs.start - c0 : xs.stop - c0] = cube.bands[:, ys, xs]
    return out


def check_windows(url: str) -> ShardWindowReader:
    cube = open_raster_cube(url)
    reader = ShardWindowReader(cube.url, cube.bands, "bands", threads=4)
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.integers(-40, 200, 30), [-64, 0, 136, 199, 300]])
    cols = np.concatenate([rng.integers(-40, 200, 30), [0, -63, 136, 199, 5]])
    windows = reader.read_windows(rows, cols, 64)
    assert windows.dtype == np.int16 and windows.shape == (35, 14, 64, 64)
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        np.testing.assert_array_equal(windows[i], direct(cube, r, c, 64), err_msg=f"window {i} at ({r}, {c})")
    assert (windows[-5] == NODATA).all()  # wholly outside the grid
    assert (windows[-1] == NODATA).all()
    assert (windows == NODATA).any(axis=(0, 2, 3))[:12].all()  # clouds are nodata in the Landsat bands
    return reader


def test_windows_equal_direct_slices_local(tmp_path):
    paths = generate_demo_region(DemoConfig(width_km=6, height_km=6, n_points=10), str(tmp_path), layout=LAYOUT)
    check_windows(paths.raster)
    cube = open_raster_cube(paths.raster)
    reader = ShardWindowReader(cube.url, cube.bands, "bands")
    reader.read_windows([10], [10], 64)
    first_requests, first_bytes = reader.requests, reader.bytes_fetched
    assert first_bytes > 0
    reader.read_windows([10], [10], 64)
    assert reader.requests - first_requests == first_requests - 1  # the shard index is not read again
    assert reader.bytes_fetched - first_bytes < first_bytes


def test_windows_equal_direct_slices_s3(s3_bucket):
    paths = generate_demo_region(DemoConfig(width_km=6, height_km=6, n_points=10), f"{s3_bucket}/demo", layout=LAYOUT)
    check_windows(paths.raster)


def test_missing_shards_read_as_nodata(tmp_path):
    grid = Grid.from_origin(3035, 0.0, 1000.0, 10.0, 100, 100)
    writer = create_raster_cube(str(tmp_path / "c.zarr"), grid, ["SR_B1"], RasterLayout(inner_chunk=16, shard=32))
    writer.write_tile(0, 0, np.full((1, 32, 32), 0.5, dtype=np.float32))
    writer.finish()
    cube = open_raster_cube(str(tmp_path / "c.zarr"))
    window = ShardWindowReader(cube.url, cube.bands, "bands").read_windows([16], [16], 32)[0, 0]
    assert (window[:16, :16] == 5000).all()
    assert (window[16:, :] == NODATA).all() and (window[:, 16:] == NODATA).all()


def test_unsharded_array_is_refused(tmp_path):
    import zarr

    arr = zarr.create_array(str(tmp_path / "plain.zarr"), shape=(2, 8, 8), chunks=(2, 4, 4), dtype="int16")
    with pytest.raises(UnsupportedLayoutError, match="not sharded"):
        ShardWindowReader(str(tmp_path), arr, "plain.zarr")
