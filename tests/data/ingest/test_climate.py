"""Climate ingest: TerraClimate layout and multi-variable NetCDF, declared order, zeros, gaps, regridding."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import reproject

from soilnet import storage
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.ingest.climate import ClimateIngestError, ingest_climate
from soilnet.data.ingest.config import ClimateIngestConfig


def test_terraclimate_layout_on_disk_and_s3(gen: ModuleType, root: str) -> None:
    urls = gen.write_terraclimate(storage.join(root, "tc"), ["swe", "aet", "pr"], [2019, 2020])
    cube_url = storage.join(root, "climate.zarr")
    cfg = ClimateIngestConfig(variables=["pr", "swe", "aet"])
    report = ingest_climate(sorted(urls, reverse=True), cube_url, cfg)  # file order must not matter

    cube = open_climate_cube(cube_url)
    assert cube.variables == ("pr", "swe", "aet") and report.variables == cube.variables
    assert str(cube.times[0]) == "2019-01-01" and len(cube.times) == 24
    for vi, var in enumerate(cube.variables):
        for yi, year in enumerate((2019, 2020)):
            want = gen.terraclimate_dataset([var], year)[var].values
            got = cube.data[vi, 12 * yi : 12 * (yi + 1)]
            np.testing.assert_allclose(got, want, atol=0.051, equal_nan=True)  # int16 packing at 0.1
    swe = cube.data[1]
    assert (swe == 0).sum() > 1000  # true zeros stay zeros
    assert np.isnan(swe[:, 0, 0]).all() and np.isfinite(swe[:, 1:, 1:]).all()  # only fill values are NaN


def test_multi_variable_file_and_month_range(gen: ModuleType, tmp_path) -> None:
    url = gen.write_netcdf(str(tmp_path / "multi.nc"), gen.terraclimate_dataset(["tmmx", "tmmn", "vpd"], 2021))
    cfg = ClimateIngestConfig(variables=["vpd", "tmmx"], start="2021-03-01", end="2021-08-31")
    ingest_climate([url], str(tmp_path / "c.zarr"), cfg)
    cube = open_climate_cube(str(tmp_path / "c.zarr"))
    assert cube.variables == ("vpd", "tmmx") and len(cube.times) == 6
    with xr.open_dataset(url) as ds:
        np.testing.assert_allclose(cube.data[0], ds["vpd"].values[2:8], atol=1e-4, equal_nan=True)


def test_regridding_matches_an_independent_warp(gen: ModuleType, tmp_path) -> None:
    url = gen.write_netcdf(str(tmp_path / "a.nc"), gen.terraclimate_dataset(["pr"], 2020, shape=(20, 24)))
    cfg = ClimateIngestConfig(variables=["pr"], epsg=3035, resolution=5000.0, resampling="nearest")
    ingest_climate([url], str(tmp_path / "c.zarr"), cfg)
    cube = open_climate_cube(str(tmp_path / "c.zarr"))
    assert cube.grid.epsg == 3035 and cube.grid.res == 5000.0
    with xr.open_dataset(url) as ds:
        src = ds["pr"].values.astype(np.float32)
        lat, lon = ds["lat"].values, ds["lon"].values
    res = float(lon[1] - lon[0])
    want = np.full((12, cube.grid.height, cube.grid.width), np.nan, np.float32)
    reproject(
        src, want, src_transform=(res, 0, lon[0] - res / 2, 0, -res, lat[0] + res / 2), src_crs="EPSG:4326",
        src_nodata=np.nan, dst_transform=cube.grid.affine, dst_crs="EPSG:3035", dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )  # fmt: skip
    got = cube.data[0]
    both = np.isfinite(got) & np.isfinite(want)
    assert both.sum() > 100
    assert np.mean(np.isclose(got[both], want[both])) > 0.98


def test_gap_names_the_variable_month_and_files(gen: ModuleType, tmp_path) -> None:
    urls = gen.write_terraclimate(str(tmp_path), ["pr"], [2019, 2021])
    with pytest.raises(ClimateIngestError, match=r"'pr': month 2020-01 missing \(after .*TerraClimate_pr_2019.nc"):
        ingest_climate(urls, str(tmp_path / "c.zarr"), ClimateIngestConfig(variables=["pr"]))
    holed = gen.write_netcdf(str(tmp_path / "holed.nc"), gen.terraclimate_dataset(["pr"], 2022, months=[1, 2, 3, 5, 6]))
    with pytest.raises(ClimateIngestError, match=r"'pr': month 2022-04 missing"):
        ingest_climate([holed], str(tmp_path / "c.zarr"), ClimateIngestConfig(variables=["pr"]))
    assert not storage.exists(str(tmp_path / "c.zarr"))


def test_bad_netcdf_inputs_name_the_file(gen: ModuleType, tmp_path) -> None:
    cfg = ClimateIngestConfig(variables=["pr"])
    broken = gen.terraclimate_dataset(["pr"], 2020)
    broken["time"] = ("time", np.arange(12.0), {"units": "fortnights after the flood"})
    url = gen.write_netcdf(str(tmp_path / "broken_time.nc"), broken)
    with pytest.raises(ClimateIngestError, match=r"broken_time.nc: time axis cannot be decoded"):
        ingest_climate([url], str(tmp_path / "c.zarr"), cfg)
    backwards = gen.terraclimate_dataset(["pr"], 2020).isel(time=slice(None, None, -1))
    url = gen.write_netcdf(str(tmp_path / "backwards.nc"), backwards)
    with pytest.raises(ClimateIngestError, match=r"backwards.nc: time axis is not increasing"):
        ingest_climate([url], str(tmp_path / "c.zarr"), cfg)
    empty = gen.write_text(str(tmp_path / "empty.nc"), "")
    with pytest.raises(ClimateIngestError, match=r"empty.nc: not a readable NetCDF"):
        ingest_climate([empty], str(tmp_path / "c.zarr"), cfg)
    other = gen.write_netcdf(str(tmp_path / "tmmx.nc"), gen.terraclimate_dataset(["tmmx"], 2020))
    with pytest.raises(ClimateIngestError, match=r"holds any of the variables \['pr'\]"):
        ingest_climate([other], str(tmp_path / "c.zarr"), cfg)
    twice = gen.write_netcdf(str(tmp_path / "again.nc"), gen.terraclimate_dataset(["tmmx"], 2020))
    with pytest.raises(ClimateIngestError, match=r"month 2020-01 is in both"):
        ingest_climate([other, twice], str(tmp_path / "c.zarr"), ClimateIngestConfig(variables=["tmmx"]))
    assert not storage.exists(str(tmp_path / "c.zarr"))


def test_interrupted_climate_ingest_resumes(gen: ModuleType, tmp_path) -> None:
    urls = gen.write_terraclimate(str(tmp_path), ["pr"], [2020], shape=(40, 40))
    cfg = ClimateIngestConfig(variables=["pr"], block_mb=0.01)
    from soilnet.data.climate_cube import ClimateLayout

    layout = ClimateLayout(spatial_chunk=8)
    seen: list[str] = []

    def stop_after_two(key: str) -> None:
        seen.append(key)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_climate(urls, str(tmp_path / "c.zarr"), cfg, layout, on_block=stop_after_two)
    report = ingest_climate(urls, str(tmp_path / "c.zarr"), cfg, layout)
    assert report.blocks_skipped == 2 and report.blocks_written > 0
    ingest_climate(urls, str(tmp_path / "whole.zarr"), cfg, layout)
    np.testing.assert_array_equal(
        open_climate_cube(str(tmp_path / "c.zarr")).data[:], open_climate_cube(str(tmp_path / "whole.zarr")).data[:]
    )
