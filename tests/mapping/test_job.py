"""The map job: equal to window-by-window predictions, resumable, incremental, on Ray and on S3."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from zarr.storage import LocalStore

from soilnet import storage
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.raster_cube import RasterCubeWriter, open_raster_cube
from soilnet.data.zarr_group import CubeValidationError
from soilnet.mapping.job import map_cube_url, prepare_map, run_map
from soilnet.mapping.manifest import read_markers
from soilnet.mapping.map_cube import MISSING_NODATA, open_map_cube
from soilnet.mapping.stages import PredictStage, ReadStage, tile_row

ROOT = Path(__file__).resolve().parents[2]


def window_by_window(cfg, bundle) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of every output pixel straight from the model, one window read per pixel."""
    images, series, (height, width) = window_inputs(cfg, bundle)
    mean, std = bundle.predict(images, series)
    return mean[:, 0].reshape(height, width), std[:, 0].reshape(height, width)


def window_inputs(cfg, bundle) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Each output pixel's image window and climate series (row-major), and the output grid's (height, width)."""
    raster, climate = open_raster_cube(cfg.raster), open_climate_cube(cfg.climate)
    grid = prepare_map(cfg, create=False).spec.grid
    out = grid.output
    rows, cols = np.meshgrid(np.arange(out.height), np.arange(out.width), indexing="ij")
    band_idx = raster.band_index(bundle.meta.bands)
    var_idx = [climate.variables.index(v) for v in bundle.meta.climate_variables]
    images = np.stack(
        [
            raster.read_window(r * grid.stride + grid.offset, c * grid.stride + grid.offset, 32, 32)[band_idx]
            for r, c in zip(rows.ravel(), cols.ravel(), strict=True)
        ]
    )
    x, y = out.x_coords()[cols.ravel()], out.y_coords()[rows.ravel()]
    series = climate.read_series(x, y, out.epsg, np.datetime64(cfg.climate_end), 12)[:, :, var_idx]
    return images, series, (out.height, out.width)


@dataclass
class Opened:
    """What a map run read of a raster cube: shards of ``bands`` (row, col) and digest-index reads."""

    shards: set[tuple[int, int]] = field(default_factory=set)
    digests: int = 0


@contextlib.contextmanager
def count_opened(raster_url: str) -> Iterator[Opened]:
    """Record the raster cube's shard reads (every zarr store read) and digest-index reads during the block."""
    opened, root = Opened(), str(Path(raster_url).resolve())
    get, get_partial, open_file = LocalStore.get, LocalStore.get_partial_values, storage.open_file

    def note(store: LocalStore, key: str) -> None:
        parts = key.split("/")
        if str(store.root) == root and parts[:2] == ["bands", "c"]:
            opened.shards.add((int(parts[3]), int(parts[4])))

    async def counted_get(self, key, *args, **kwargs):
        note(self, key)
        return await get(self, key, *args, **kwargs)

    async def counted_partial(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            note(self, key)
        return await get_partial(self, prototype, key_ranges)

    def counted_open(url, mode="rb"):
        opened.digests += str(url).startswith(root) and "_digests" in str(url) and "r" in mode
        return open_file(url, mode)

    with (
        mock.patch.object(LocalStore, "get", counted_get),
        mock.patch.object(LocalStore, "get_partial_values", counted_partial),
        mock.patch.object(storage, "open_file", counted_open),
    ):
        yield opened


def cube_bytes(url: str) -> dict[str, bytes]:
    """Every file of a map cube by relative path."""
    root = Path(url)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_map_equals_window_by_window_predictions(map_config, ray_local, reference_bundle) -> None:
    cfg = map_config(executor="ray", tile_px=16)
    result = run_map(cfg)
    assert result.tiles == 4 and len(result.computed) == 4
    cube = open_map_cube(result.map_url)
    mean, std = window_by_window(cfg, reference_bundle)
    got_mean, got_std = cube.read("soc_g_kg"), cube.read("soc_g_kg_std")
    missing = cube.read("input_missing")
    assert not np.any(missing == MISSING_NODATA)  # the region is the whole cube
    valid = np.isfinite(got_mean)
    assert valid.mean() > 0.9
    np.testing.assert_allclose(got_mean[valid], mean[valid], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got_std[valid], std[valid], rtol=1e-4, atol=1e-4)
    assert np.all(missing[~valid] == 1)  # nodata only where the input was missing
    assert run_map(cfg).computed == []  # nothing changed: nothing recomputed


def test_nodata_follows_the_input(map_config, tiny_demo, reference_bundle) -> None:
    cfg = map_config(resolution_m=30, tile_px=64, chunk_px=64, region=None)
    prepared = prepare_map(cfg, create=False)
    raster = open_raster_cube(tiny_demo.raster)
    bands = raster.band_index(reference_bundle.meta.bands)

    def cloud(tile) -> np.ndarray:
        raw = raster.read_raw(tile.row0, tile.col0, tile.height, tile.width)[bands]
        return raw == raster.nodata

    tile = max(prepared.plan.tiles, key=lambda t: cloud(t).any(axis=0).sum())
    row = ReadStage(prepared.spec)(tile_row(tile))[0]
    out = PredictStage(prepared.spec)(row)
    nodata = cloud(tile).any(axis=0)  # at 30 m an output pixel's block is its own input pixel
    assert nodata.any() and not nodata.all()
    assert np.array_equal(np.isnan(out["mean"][0]), nodata)
    assert np.array_equal(np.isnan(out["std"][0]), nodata)
    assert np.array_equal(out["missing"] == 1, nodata)


def test_one_changed_shard_recomputes_exactly_the_tiles_over_it(map_config, tiny_demo, tmp_path) -> None:
    raster_copy = str(tmp_path / "raster.zarr")
    shutil.copytree(tiny_demo.raster, raster_copy)
    cfg = map_config(raster=raster_copy)
    assert len(run_map(cfg).computed) == 16
    # rewrite shard (1, 1) (rows/cols 128..199 of the 128 px shards) as an ingest would: through the writer
    cube = open_raster_cube(raster_copy, writable=True)
    values = cube.read_window(128, 128, 72, 72)
    values[:, 22:, 22:] *= 0.5  # only rows/cols 150..199 differ
    writer = RasterCubeWriter(cube)
    writer.write_tile(128, 128, values)
    writer.finish()
    with count_opened(raster_copy) as opened:
        result = run_map(cfg)
    # 8 output px tiles at stride 8 read input rows t * 64 - 12 .. t * 64 + 76 (32 px windows): tiles 1..3 reach 128
    assert result.computed == [f"r{r:04d}_c{c:04d}" for r in (1, 2, 3) for c in (1, 2, 3)]
    assert opened.shards == {(1, 1), (0, 0), (0, 1), (1, 0)} and opened.digests == 1  # read: their tiles' shards
    full = map_config(raster=raster_copy, out=str(tmp_path / "full"))
    run_map(full)
    assert cube_bytes(map_cube_url(cfg.out)) == cube_bytes(map_cube_url(full.out))
    with count_opened(raster_copy) as opened:
        assert run_map(cfg).computed == []
    assert opened.shards == set() and opened.digests == 1  # nothing changed: no pixel read at all


def test_killed_job_resumes_to_identical_bytes(map_config, tmp_path) -> None:
    reference = map_config(out=str(tmp_path / "reference"))
    run_map(reference)
    cfg = map_config(out=str(tmp_path / "killed"), lease_ttl_s=2.0, lease_wait_s=30.0)  # rerun waits out the lease
    config_file = tmp_path / "map.yaml"
    config_file.write_text(yaml.safe_dump({"map": cfg.model_dump(mode="json")}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.map", "--config", str(config_file), "--no-publish"],
        cwd=ROOT,
        env={**os.environ, "SOILNET_PROGRESS": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while len(read_markers(cfg.out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(read_markers(cfg.out))
    assert 3 <= done < 16, f"the job was not killed mid-run ({done} tiles done)"
    with pytest.raises(CubeValidationError, match="incomplete map_cube"):
        open_map_cube(map_cube_url(cfg.out))  # a half-written map never reads as finished
    result = run_map(cfg)
    assert len(result.computed) == 16 - done
    assert cube_bytes(map_cube_url(cfg.out)) == cube_bytes(map_cube_url(reference.out))


def test_existing_map_with_other_settings_is_refused(map_config) -> None:
    cfg = map_config()
    run_map(cfg)
    other = map_config(mode="dense")
    with pytest.raises(CubeValidationError, match=r"other settings \(mode\).*--overwrite"):
        run_map(other)
    assert len(run_map(other, overwrite=True).computed) == 16


def test_map_on_s3(map_config, s3_bucket, tiny_model) -> None:
    cfg = map_config(out=storage.join(s3_bucket, "maps/tiny"), tile_px=16, chunk_px=8)
    result = run_map(cfg)
    assert result.map_url.startswith("s3://") and len(result.computed) == 4
    cube = open_map_cube(result.map_url)
    assert np.isfinite(cube.read("soc_g_kg")).mean() > 0.9
    assert sorted(read_markers(cfg.out)) == ["r0000_c0000", "r0000_c0001", "r0001_c0000", "r0001_c0001"]
    assert run_map(cfg).computed == []
