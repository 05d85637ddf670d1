"""Cubes opened with xarray: physical values, CRS for rioxarray, and no warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import soilnet
from soilnet import storage
from soilnet.data.climate_cube import create_climate_cube, finish_climate_cube, write_climate_block
from soilnet.data.grid import Grid
from soilnet.data.raster_cube import RasterLayout, create_raster_cube
from soilnet.data.zarr_group import CubeValidationError

GRID = Grid.from_origin(3035, 4_000_000.0, 3_000_000.0, 30.0, 64, 64)


def raster_cube(url: str) -> np.ndarray:
    """A 3-band cube (two reflectances, NDVI) with one nodata pixel; returns the values written."""
    rng = np.random.default_rng(0)
    values = np.stack(
        [rng.uniform(0.02, 0.4, (64, 64)), rng.uniform(0.02, 0.4, (64, 64)), rng.uniform(-1, 1, (64, 64))]
    )
    values = values.astype(np.float32)
    values[0, 5, 7] = np.nan
    writer = create_raster_cube(url, GRID, ["SR_B1", "SR_B4", "ndvi"], RasterLayout(inner_chunk=32, shard=64))
    writer.write_tile(0, 0, values)
    writer.finish()
    return values


@pytest.mark.parametrize("where", ["local", "s3"])
def test_engine_soilnet_gives_reflectance_in_physical_units_without_warnings(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3_bucket")
    url = f"{root}/raster.zarr"
    written = raster_cube(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        ds = xr.open_dataset(url, engine="soilnet")
        bands = ds["bands"]
        window = bands.isel(y=slice(0, 16), x=slice(0, 16)).values
        pixel = float(bands.sel(band="SR_B4").isel(y=40, x=33))
        crs = ds.rio.crs
        plain = xr.open_zarr(storage.zarr_store(url))  # consolidated metadata: plain open_zarr warns nothing
    assert bands.dtype == np.float32 and "scale" not in ds.coords
    np.testing.assert_allclose(window, written[:, :16, :16], atol=1e-4)  # int16 with scale 1e-4: reflectance
    assert np.isnan(window[0, 5, 7])  # nodata
    assert pixel == pytest.approx(written[1, 40, 33], abs=1e-4)
    assert crs.to_epsg() == 3035 and ds.rio.transform().c == 4_000_000.0
    assert np.nanmax(plain["bands"].values[0]) > 1000  # what plain open_zarr returns: the stored integers
    xr.testing.assert_identical(soilnet.open_cube(url), ds)


def test_climate_cube_opens_with_its_crs(tmp_path: Path) -> None:
    grid = Grid.from_origin(4326, 5.0, 50.0, 0.5, 4, 4)
    times = np.arange("2018-01", "2018-04", dtype="datetime64[M]").astype("datetime64[D]")
    cube = create_climate_cube(str(tmp_path / "c.zarr"), grid, ["tmax", "pr"], times)
    values = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    write_climate_block(cube, 0, 0, values)
    finish_climate_cube(cube)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_dataset(str(tmp_path / "c.zarr"), engine="soilnet")
        assert ds.rio.crs.to_epsg() == 4326
        np.testing.assert_array_equal(ds["climate"].values, values)


def test_not_a_cube_is_named(tmp_path: Path) -> None:
    with pytest.raises(CubeValidationError, match=r"nothing\.zarr: no Zarr v3 group here"):
        soilnet.open_cube(str(tmp_path / "nothing.zarr"))
