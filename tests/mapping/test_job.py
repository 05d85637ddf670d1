"""The map job: equal to window-by-window predictions, resumable, incremental, on Ray and on S3."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from soilnet import storage
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.raster_cube import open_raster_cube
from soilnet.data.zarr_group import CubeValidationError
from soilnet.mapping.job import map_cube_url, prepare_map, run_map
from soilnet.mapping.manifest import read_markers
from soilnet.mapping.map_cube import MISSING_NODATA, open_map_cube
from soilnet.mapping.stages import PredictStage, ReadStage, tile_row

ROOT = Path(__file__).resolve().parents[2]


def window_by_window(cfg, bundle) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of every output pixel straight from the model, one window read per pixel."""
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
    mean, std = bundle.predict(images, series)
    return mean[:, 0].reshape(out.height, out.width), std[:, 0].reshape(out.height, out.width)


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


def test_incremental_run_recomputes_only_changed_tiles(map_config, tiny_demo, tmp_path) -> None:
    raster_copy = str(tmp_path / "raster.zarr")
    shutil.copytree(tiny_demo.raster, raster_copy)
    cfg = map_config(raster=raster_copy)
    assert len(run_map(cfg).computed) == 16
    before = open_map_cube(map_cube_url(cfg.out)).read("soc_g_kg")
    # rewrite one 128 px shard's worth of pixels in its south-east corner: rows/cols 150..199
    cube = open_raster_cube(raster_copy, writable=True)
    raw = cube.read_raw(150, 150, 50, 50)
    cube.bands[:, 150:200, 150:200] = np.where(raw == cube.nodata, raw, raw // 2)
    result = run_map(cfg)
    # tiles whose halo'd input window reaches row/col 150: output rows >= (150 - 16 - 28) / 8
    assert result.computed == ["r0002_c0002", "r0002_c0003", "r0003_c0002", "r0003_c0003"]
    after = open_map_cube(map_cube_url(cfg.out)).read("soc_g_kg")
    assert np.array_equal(before[:16], after[:16], equal_nan=True)
    assert not np.allclose(before[20:, 20:], after[20:, 20:], equal_nan=True)


def test_killed_job_resumes_to_identical_bytes(map_config, tmp_path) -> None:
    reference = map_config(out=str(tmp_path / "reference"))
    run_map(reference)
    cfg = map_config(out=str(tmp_path / "killed"))
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
