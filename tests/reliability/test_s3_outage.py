"""The S3 endpoint stopped for seconds during cube writes, ingest and streaming reads, then restarted on its port.

Bounded retries with backoff must ride out the outage; a store that stays down must fail the job with
an error naming the store, leave no shard marked done without its data, and a rerun must resume.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from soilnet.data.grid import Grid
from soilnet.data.ingest.config import RasterIngestConfig
from soilnet.data.ingest.raster import ingest_rasters
from soilnet.data.ingest.resume import IngestProgress, is_complete
from soilnet.data.raster_cube import RasterLayout, create_raster_cube, decode, encode, open_raster_cube
from soilnet.data.shard_reader import ShardWindowReader
from soilnet.storage import StorageError

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")]

#: Seconds the endpoint stays down: a store pod restarting, a load balancer failing over.
OUTAGE_S = 3.0
LAYOUT = RasterLayout(inner_chunk=16, shard=32)
BANDS = ["elevation", "slope"]
INGEST = RasterIngestConfig(source_bands=BANDS, workers=2)


def _values(grid: Grid) -> np.ndarray:
    rng = np.random.default_rng(5)
    elevation = rng.uniform(100, 900, (grid.height, grid.width))
    slope = rng.uniform(0, 30, (grid.height, grid.width))
    return np.stack([elevation, slope]).astype(np.float32)


def _write_cube(url: str, grid: Grid, outage: tuple[object, int] | None = None) -> np.ndarray:
    """Write a small cube tile by tile; ``outage = (s3, i)`` stops the endpoint before tile ``i``."""
    writer = create_raster_cube(url, grid, BANDS, LAYOUT)
    values = _values(grid)
    for i, (row0, col0, h, w) in enumerate(grid.tiles(LAYOUT.shard)):
        if outage is not None and i == outage[1]:
            outage[0].outage(OUTAGE_S)  # type: ignore[attr-defined]
        writer.write_tile(row0, col0, values[:, row0 : row0 + h, col0 : col0 + w])
    writer.finish()
    return decode(encode(values, writer.cube.scale, writer.cube.offset), writer.cube.scale, writer.cube.offset)


GRID = Grid.from_origin(3035, 4_000_000.0, 3_000_000.0, 30.0, 64, 64)


def test_raster_cube_writes_ride_out_an_outage(restartable_s3):
    url = f"{restartable_s3.bucket()}/cube.zarr"
    expected = _write_cube(url, GRID, outage=(restartable_s3, 1))
    restartable_s3.wait_up()
    np.testing.assert_array_equal(open_raster_cube(url).read_window(0, 0, 64, 64), expected)


def test_a_dead_store_is_a_storage_error_naming_the_cube(restartable_s3, monkeypatch):
    monkeypatch.setenv("SOILNET_S3_MAX_ATTEMPTS", "1")
    url = f"{restartable_s3.bucket()}/cube.zarr"
    writer = create_raster_cube(url, GRID, BANDS, LAYOUT)
    restartable_s3.stop()
    with pytest.raises(StorageError, match=re.escape(writer.cube.url)):
        writer.write_tile(0, 0, _values(GRID)[:, :32, :32])


def _ingest_inputs(gen: ModuleType, tmp_path: Path) -> tuple[list[str], Grid, np.ndarray]:
    """Two overlapping GeoTIFFs, the cube grid, and the bands of an uninterrupted local ingest."""
    sources = [
        gen.write_scene(str(tmp_path / "utm.tif"), "utm_uint16"),
        gen.write_scene(str(tmp_path / "merc.tif"), "mercator_int16", seed=4),
    ]
    grid = gen.target_grid(size=96)
    ingest_rasters(sources, str(tmp_path / "reference.zarr"), grid, BANDS, INGEST, LAYOUT)
    return sources, grid, open_raster_cube(str(tmp_path / "reference.zarr")).bands[:]


def test_raster_ingest_rides_out_an_outage(gen, restartable_s3, tmp_path):
    sources, grid, reference = _ingest_inputs(gen, tmp_path)
    url = f"{restartable_s3.bucket()}/raster.zarr"
    seen: list[str] = []

    def fault(key: str, wrote: bool) -> None:
        seen.append(key)
        if len(seen) == 2:
            restartable_s3.outage(OUTAGE_S)

    report = ingest_rasters(sources, url, grid, BANDS, INGEST, LAYOUT, on_shard=fault)
    restartable_s3.wait_up()
    assert report.shards_written + report.shards_empty == report.shards_total == 9
    cube = open_raster_cube(url)
    assert is_complete(cube.group)
    np.testing.assert_array_equal(cube.bands[:], reference)


def _shard_origin(key: str) -> tuple[int, int]:
    row, col = re.fullmatch(r"r(\d+)_c(\d+)", key).groups()  # type: ignore[union-attr]
    return int(row), int(col)


def test_ingest_into_a_store_that_stays_down_fails_then_resumes_without_loss(
    gen, restartable_s3, tmp_path, monkeypatch
):
    sources, grid, reference = _ingest_inputs(gen, tmp_path)
    bucket = restartable_s3.bucket()
    url = f"{bucket}/raster.zarr"
    monkeypatch.setenv("SOILNET_S3_MAX_ATTEMPTS", "2")
    seen: list[str] = []

    def kill(key: str, wrote: bool) -> None:
        seen.append(key)
        if len(seen) == 3:
            restartable_s3.stop()  # other shards are being written right now

    with pytest.raises(StorageError) as err:
        ingest_rasters(sources, url, grid, BANDS, INGEST, LAYOUT, on_shard=kill)
    assert f"{bucket.removeprefix('s3://')}/raster.zarr" in str(err.value)

    restartable_s3.start()
    monkeypatch.delenv("SOILNET_S3_MAX_ATTEMPTS")
    cube = open_raster_cube(url, writable=True)
    assert not is_complete(cube.group)
    done = IngestProgress(cube.url, cube.group).done()
    assert 3 <= len(done) < 9
    for key in done:  # a shard marked done holds its data
        row0, col0 = _shard_origin(key)
        window = (slice(None), slice(row0, row0 + 32), slice(col0, col0 + 32))
        np.testing.assert_array_equal(cube.bands[window], reference[window], err_msg=f"shard {key}")

    report = ingest_rasters(sources, url, grid, BANDS, INGEST, LAYOUT)
    assert report.shards_skipped == len(done)
    resumed = open_raster_cube(url)
    assert is_complete(resumed.group)
    np.testing.assert_array_equal(resumed.bands[:], reference)


def test_window_reads_ride_out_an_outage_and_name_a_dead_store(restartable_s3, monkeypatch):
    url = f"{restartable_s3.bucket()}/cube.zarr"
    _write_cube(url, GRID)
    cube = open_raster_cube(url)
    reader = ShardWindowReader(cube.url, cube.bands, "bands", threads=4)
    reader.read_windows([0], [0], 16)
    restartable_s3.outage(OUTAGE_S + 2)
    rows = [5, 20, 40, 48]
    windows = reader.read_windows(rows, rows, 16)
    restartable_s3.wait_up()
    for i, r in enumerate(rows):
        np.testing.assert_array_equal(windows[i], cube.bands[:, r : r + 16, r : r + 16])

    monkeypatch.setenv("SOILNET_S3_MAX_ATTEMPTS", "1")
    dead = ShardWindowReader(cube.url, cube.bands, "bands", threads=4)
    restartable_s3.stop()
    with pytest.raises(StorageError, match=re.escape(cube.url)):
        dead.read_windows([5], [5], 16)
