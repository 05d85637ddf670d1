"""Raster ingest: values against an independent one-shot GDAL warp, mosaics, Landsat C2, resume, bad input."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from soilnet import storage
from soilnet.data.grid import Grid
from soilnet.data.ingest.config import RasterIngestConfig
from soilnet.data.ingest.raster import (
    LANDSAT_SR_OFFSET,
    LANDSAT_SR_SCALE,
    RasterIngestError,
    grid_from_sources,
    ingest_rasters,
)
from soilnet.data.ingest.resume import is_complete
from soilnet.data.raster_cube import RasterCubeWriter, RasterLayout, create_raster_cube, open_raster_cube
from soilnet.data.zarr_group import CubeExistsError, CubeValidationError

BANDS = ["elevation", "slope"]
LAYOUT = RasterLayout(inner_chunk=16, shard=32)


def reference(url: str, grid: Grid, indexes: list[int], resampling: str) -> np.ndarray:
    """An independent one-shot warp of a whole file onto the whole grid (NaN = nodata).

    GDAL widens its kernel by the resolution ratio; the ratio is fixed here from the pixel sizes
    so the reference does not depend on how GDAL happens to chunk the warp.
    """
    out = np.full((len(indexes), grid.height, grid.width), np.nan, dtype=np.float32)
    with storage.rasterio_env(url), rasterio.open(storage.gdal_path(url)) as src:
        w, s, e, n = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
        reproject(
            rasterio.band(src, indexes),
            out,
            dst_transform=grid.affine,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=Resampling[resampling],
            XSCALE=(e - w) / src.width / grid.res,
            YSCALE=(n - s) / src.height / grid.res,
        )
    return out


def stored(values: np.ndarray, cube_url: str) -> np.ndarray:
    """Values as the cube stores them (scaled int16), to compare like with like."""
    cube = open_raster_cube(cube_url)
    shape = (-1, 1, 1)
    raw = np.rint((values - cube.offset.reshape(shape)) / cube.scale.reshape(shape))
    return (raw * cube.scale.reshape(shape) + cube.offset.reshape(shape)).astype(np.float32)


@pytest.mark.parametrize("scene", ["utm_uint16", "mercator_int16", "lonlat_float32"])
@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
def test_values_match_an_independent_warp(gen: ModuleType, tmp_path, scene: str, resampling: str) -> None:
    url = gen.write_scene(str(tmp_path / f"{scene}.tif"), scene)
    grid = gen.target_grid()
    cube_url = str(tmp_path / "cube.zarr")
    report = ingest_rasters([url], cube_url, grid, BANDS, RasterIngestConfig(resampling=resampling), LAYOUT)

    got = open_raster_cube(cube_url).read_window(0, 0, grid.height, grid.width)
    want = stored(reference(url, grid, [1, 2], resampling), cube_url)
    assert report.shards_total == 16 and report.shards_written + report.shards_empty == 16
    # nodata (the hole and outside the scene) lands on the same pixels, give or take a pixel edge
    assert np.mean(np.isnan(got) == np.isnan(want)) > 0.995
    both = np.isfinite(got) & np.isfinite(want)
    assert both.sum() > 5000
    diff = np.abs(got - want)[:, both[0] & both[1]]
    if resampling == "nearest":  # the same source pixel except where a centre sits on a pixel edge
        assert np.mean(diff < 1e-3) > 0.99
    else:  # bilinear: identical up to GDAL's approximate transformer (1/8 px) on a smooth field
        assert np.percentile(diff[0], 99) < 1.0 and np.percentile(diff[1], 99) < 0.1
    assert np.nanmax(got[0]) > 1000 and np.nanmin(got[0]) < 500  # real values, not scaled away


def test_mosaic_of_several_crs_on_disk_and_s3(gen: ModuleType, root: str) -> None:
    first = gen.write_scene(storage.join(root, "in/utm.tif"), "utm_uint16", shape=(50, 60), seed=1)
    second = gen.write_scene(storage.join(root, "in/lonlat.tif"), "lonlat_float32", shape=(60, 90), seed=2)
    grid = grid_from_sources([first, second], 3035, 30.0)
    cube_url = storage.join(root, "cube.zarr")
    ingest_rasters([first, second], cube_url, grid, BANDS, RasterIngestConfig(workers=2), LAYOUT)

    got = open_raster_cube(cube_url).read_window(0, 0, grid.height, grid.width)
    a, b = (stored(reference(u, grid, [1, 2], "bilinear"), cube_url) for u in (first, second))
    want = np.where(np.isnan(a), b, a)  # the first file wins where it has data
    both = np.isfinite(got) & np.isfinite(want)
    assert both.mean() > 0.5
    assert np.percentile(np.abs(got - want)[both], 99) < 1.0
    assert np.isnan(got).any()  # the union box has corners no input covers


def test_grid_from_sources_covers_inputs_snapped(gen: ModuleType, tmp_path) -> None:
    url = gen.write_scene(str(tmp_path / "a.tif"), "mercator_int16")
    grid = grid_from_sources([url], 3035, 30.0)
    w, s, e, n = grid.bounds
    with rasterio.open(url) as src:
        bw, bs, be, bn = transform_bounds(src.crs, "EPSG:3035", *src.bounds, densify_pts=21)
    assert w <= bw and s <= bs and e >= be and n >= bn
    assert e - be < 30 and bw - w < 30
    assert all(abs(v / 30 - round(v / 30)) < 1e-9 for v in grid.bounds)


def test_landsat_c2_scale_offset_and_qa_mask(gen: ModuleType, tmp_path) -> None:
    url = gen.write_landsat_c2(str(tmp_path / "LC08_L2SP.tif"))
    grid = gen.target_grid(size=64)
    cfg = RasterIngestConfig(
        landsat_c2=True, resampling="nearest", source_bands=["SR_B1", "SR_B2", "SR_B3", "QA_PIXEL"]
    )
    cube_url = str(tmp_path / "cube.zarr")
    ingest_rasters([url], cube_url, grid, ["SR_B2", "SR_B3"], cfg, LAYOUT)

    got = open_raster_cube(cube_url).read_window(0, 0, grid.height, grid.width)
    dn = reference(url, grid, [2, 3, 4], "nearest")
    qa = np.nan_to_num(dn[2]).astype(np.uint16)
    flagged = (qa & 0b111110) != 0
    clear = ~flagged & np.isfinite(dn[0])
    assert flagged.sum() > 50 and clear.sum() > 500
    assert np.isnan(got[:, flagged]).mean() > 0.99  # cloud, shadow, snow masked
    expect = dn[:2] * LANDSAT_SR_SCALE + LANDSAT_SR_OFFSET
    agree = np.isclose(got[:, clear], expect[:, clear], atol=1.5e-4)
    assert agree.mean() > 0.99
    assert np.nanmin(got) > 0.0 and np.nanmax(got) < 0.4  # reflectance, not DNs


def test_interrupted_ingest_resumes_to_identical_bytes(gen: ModuleType, root: str, monkeypatch) -> None:
    url = gen.write_scene(storage.join(root, "scene.tif"), "utm_uint16")
    grid = gen.target_grid(size=64)  # 4 shards
    cfg = RasterIngestConfig(workers=1)
    whole = storage.join(root, "whole.zarr")
    ingest_rasters([url], whole, grid, BANDS, cfg, LAYOUT)

    resumed = storage.join(root, "resumed.zarr")
    real_write = RasterCubeWriter.write_tile
    calls = {"n": 0}

    def failing_write(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError("connection reset (simulated)")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(RasterCubeWriter, "write_tile", failing_write)
    with pytest.raises(OSError, match="simulated"):
        ingest_rasters([url], resumed, grid, BANDS, cfg, LAYOUT)
    monkeypatch.setattr(RasterCubeWriter, "write_tile", real_write)
    with pytest.raises(CubeValidationError, match="incomplete raster_cube"):
        open_raster_cube(resumed)  # read-only opens refuse it
    partial = open_raster_cube(resumed, writable=True)  # valid, but flagged incomplete
    assert not is_complete(partial.group)

    report = ingest_rasters([url], resumed, grid, BANDS, cfg, LAYOUT)
    assert report.shards_skipped >= 2 and report.shards_written + report.shards_empty < report.shards_total
    assert is_complete(open_raster_cube(resumed).group)

    def chunk_files(cube: str) -> dict[str, bytes]:
        loc = storage.resolve(storage.join(cube, "bands"))
        files = [p for p in loc.fs.find(loc.path) if not p.endswith("zarr.json")]
        return {p[len(loc.path) :]: loc.fs.cat_file(p) for p in files}

    assert chunk_files(whole) == chunk_files(resumed)
    again = ingest_rasters([url], resumed, grid, BANDS, cfg, LAYOUT)
    assert again.shards_skipped == again.shards_total


def test_existing_cube_is_never_overwritten_silently(gen: ModuleType, tmp_path) -> None:
    url = gen.write_scene(str(tmp_path / "a.tif"), "utm_uint16")
    other = gen.write_scene(str(tmp_path / "b.tif"), "mercator_int16")
    grid = gen.target_grid(size=64)
    foreign = str(tmp_path / "foreign.zarr")
    create_raster_cube(foreign, grid, BANDS, LAYOUT).finish()
    with pytest.raises(CubeExistsError, match="not made by a file ingest"):
        ingest_rasters([url], foreign, grid, BANDS, layout=LAYOUT)

    cube_url = str(tmp_path / "cube.zarr")
    ingest_rasters([url], cube_url, grid, BANDS, layout=LAYOUT)
    with pytest.raises(CubeExistsError, match="different sources"):
        ingest_rasters([other], cube_url, grid, BANDS, layout=LAYOUT)
    report = ingest_rasters([other], cube_url, grid, BANDS, layout=LAYOUT, overwrite=True)
    assert report.shards_skipped == 0


def test_a_cube_whose_creation_was_interrupted_is_created_again(gen: ModuleType, tmp_path) -> None:
    url = gen.write_scene(str(tmp_path / "a.tif"), "utm_uint16")
    grid = gen.target_grid(size=64)
    cube_url = str(tmp_path / "cube.zarr")
    create_raster_cube(cube_url, grid, ["elevation"], LAYOUT)  # stopped before the ingest began: no _ingest
    report = ingest_rasters([url], cube_url, grid, BANDS, layout=LAYOUT)
    assert report.shards_skipped == 0
    cube = open_raster_cube(cube_url)
    assert cube.band_names == tuple(BANDS) and is_complete(cube.group)


def test_bad_inputs_name_the_file_and_leave_no_cube(gen: ModuleType, tmp_path) -> None:
    grid = gen.target_grid()
    good = gen.write_scene(str(tmp_path / "good.tif"), "utm_uint16")
    corrupt = gen.write_text(str(tmp_path / "corrupt.tif"), "II*\x00 this is not a tiff")
    no_crs = gen.write_geotiff(
        str(tmp_path / "nocrs.tif"), np.ones((2, 8, 8), np.float32), None, rasterio.Affine(30, 0, 0, 0, -30, 0)
    )
    cube_url = str(tmp_path / "cube.zarr")
    with pytest.raises(RasterIngestError, match=r"corrupt\.tif"):
        ingest_rasters([good, corrupt], cube_url, grid, BANDS, layout=LAYOUT)
    with pytest.raises(RasterIngestError, match=r"nocrs.tif: raster has no CRS"):
        ingest_rasters([no_crs], cube_url, grid, BANDS, layout=LAYOUT)
    cfg = RasterIngestConfig(source_bands=["elevation", "slope", "aspect"])
    with pytest.raises(RasterIngestError, match=r"good.tif: has 2 bands, 3 declared"):
        ingest_rasters([good], cube_url, grid, BANDS, cfg, LAYOUT)
    with pytest.raises(RasterIngestError, match=r"cube bands \['ndvi'\] are not among"):
        ingest_rasters([good], cube_url, grid, ["ndvi"], RasterIngestConfig(source_bands=BANDS), LAYOUT)
    assert not storage.exists(cube_url)


def test_truncated_tiff_fails_naming_the_file_and_cube_stays_incomplete(gen: ModuleType, tmp_path) -> None:
    grid = gen.target_grid()
    url = gen.write_scene(str(tmp_path / "whole.tif"), "utm_uint16")
    payload = (tmp_path / "whole.tif").read_bytes()
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(payload[: len(payload) // 2])
    cube_url = str(tmp_path / "cube.zarr")
    with pytest.raises(RasterIngestError, match=r"truncated\.tif"):
        ingest_rasters([str(truncated)], cube_url, grid, BANDS, layout=LAYOUT)
    if storage.exists(cube_url):
        assert not is_complete(open_raster_cube(cube_url, writable=True).group)
    assert url
