"""Disk full on the local store (a 2 MiB tmpfs): a clear error naming the store, nothing corrupt marked complete."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from soilnet.cli import app
from soilnet.data.ingest.config import RasterIngestConfig
from soilnet.data.ingest.raster import ingest_rasters
from soilnet.data.ingest.resume import IngestProgress, is_complete
from soilnet.data.raster_cube import RasterLayout, open_raster_cube, validate_raster_cube
from soilnet.data.zarr_group import CubeValidationError
from soilnet.storage import StorageError

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")]

LAYOUT = RasterLayout(inner_chunk=16, shard=32)
BANDS = ["elevation", "slope"]
INGEST = RasterIngestConfig(source_bands=BANDS, workers=2)
#: Free bytes left on the tmpfs (4 KiB blocks): the disk fills up while shards are written / while the cube is created.
SHARDS_FILL_UP = 80 * 1024
CREATION_FILLS_UP = 36 * 1024
#: Free bytes left for a 9 km demo region (about 2 MiB: raster 1.7, truth 0.2, climate 0.1): the raster fills up.
DEMO_FILLS_UP = 1024 * 1024


def _leave_free(folder: Path, keep_bytes: int) -> Path:
    """Fill a file system so that only about ``keep_bytes`` stay free; returns the filler to delete later."""
    stats = os.statvfs(folder)
    filler = folder / "filler.bin"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - keep_bytes))
    return filler


def _ingest_inputs(gen, tmp_path: Path) -> tuple[list[str], object, np.ndarray]:
    sources = [gen.write_scene(str(tmp_path / "utm.tif"), "utm_uint16")]
    grid = gen.target_grid(size=96)
    ingest_rasters(sources, str(tmp_path / "reference.zarr"), grid, BANDS, INGEST, LAYOUT)
    return sources, grid, open_raster_cube(str(tmp_path / "reference.zarr")).bands[:]


def test_ingest_on_a_full_disk_fails_naming_the_store_and_resumes_without_loss(gen, small_tmpfs, tmp_path):
    sources, grid, reference = _ingest_inputs(gen, tmp_path)
    cube_url = str(small_tmpfs / "raster.zarr")
    filler = _leave_free(small_tmpfs, SHARDS_FILL_UP)
    with pytest.raises((OSError, StorageError), match="No space left on device"):
        ingest_rasters(sources, cube_url, grid, BANDS, INGEST, LAYOUT)

    with pytest.raises(CubeValidationError, match="incomplete raster_cube"):
        open_raster_cube(cube_url)
    cube = open_raster_cube(cube_url, writable=True)
    assert not is_complete(cube.group)
    done = IngestProgress(cube.url, cube.group).done()
    assert len(done) < 9
    for key in done:  # every shard marked done decodes and holds its data
        row0, col0 = (int(v) for v in re.fullmatch(r"r(\d+)_c(\d+)", key).groups())  # type: ignore[union-attr]
        window = (slice(None), slice(row0, row0 + 32), slice(col0, col0 + 32))
        np.testing.assert_array_equal(cube.bands[window], reference[window], err_msg=f"shard {key}")

    filler.unlink()  # the operator frees space and reruns the same command
    report = ingest_rasters(sources, cube_url, grid, BANDS, INGEST, LAYOUT)
    assert report.shards_skipped == len(done)
    resumed = open_raster_cube(cube_url)
    assert is_complete(resumed.group)
    np.testing.assert_array_equal(resumed.bands[:], reference)


def test_a_full_disk_is_a_storage_error_naming_the_cube(gen, small_tmpfs, tmp_path):
    sources, grid, _ = _ingest_inputs(gen, tmp_path)
    cube_url = str(small_tmpfs / "raster.zarr")
    _leave_free(small_tmpfs, SHARDS_FILL_UP)
    with pytest.raises(StorageError, match=re.escape(cube_url)):
        ingest_rasters(sources, cube_url, grid, BANDS, INGEST, LAYOUT)


@pytest.mark.parametrize("free", [CREATION_FILLS_UP, SHARDS_FILL_UP], ids=["while-creating", "while-writing-shards"])
def test_an_interrupted_ingest_does_not_validate(gen, small_tmpfs, tmp_path, free):
    sources, grid, _ = _ingest_inputs(gen, tmp_path)
    cube_url = str(small_tmpfs / "raster.zarr")
    _leave_free(small_tmpfs, free)
    with pytest.raises((OSError, StorageError)):
        ingest_rasters(sources, cube_url, grid, BANDS, INGEST, LAYOUT)
    with pytest.raises(CubeValidationError, match=re.escape(cube_url)):
        validate_raster_cube(cube_url, BANDS)


def _demo_data(workspace: Path):
    """Run ``soilnet demo-data`` into a folder of the tmpfs with too little room for the ~2 MiB it writes."""
    _leave_free(workspace.parent, DEMO_FILLS_UP)
    return CliRunner().invoke(app, ["demo-data", "--out", str(workspace), "--size-km", "9", "--n-points", "20"])


def test_demo_data_on_a_full_disk_is_one_clear_error(small_tmpfs):
    result = _demo_data(small_tmpfs / "ws")
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and str(small_tmpfs / "ws") in result.output


def test_demo_data_on_a_full_disk_leaves_no_cube_that_validates(small_tmpfs):
    result = _demo_data(small_tmpfs / "ws")
    assert result.exit_code != 0
    assert isinstance(result.exception, OSError) or "No space left" in result.output
    for name in ("raster.zarr", "truth.zarr"):
        if (small_tmpfs / "ws" / name / "zarr.json").exists():
            with pytest.raises(CubeValidationError):
                validate_raster_cube(str(small_tmpfs / "ws" / name))
