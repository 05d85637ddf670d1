"""Climate cube contract: round trip, monthly axis checks, series reads by location and date."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from soilnet.data.climate_cube import (
    ClimateLayout,
    CubeValidationError,
    check_monthly,
    create_climate_cube,
    finish_climate_cube,
    month_starts,
    open_climate_cube,
    validate_climate_cube,
    write_climate_block,
)
from soilnet.data.grid import Grid

GRID = Grid.from_origin(4326, 8.0, 51.0, 0.5, 7, 5)
VARS = ["pr", "tmmx", "swe"]


def make_cube(url: str) -> np.ndarray:
    times = month_starts("2015-01", 30)
    values = np.arange(3 * 30 * 5 * 7, dtype=np.float32).reshape(3, 30, 5, 7)
    values[2] = 0.0  # true zeros stay zeros
    cube = create_climate_cube(url, GRID, VARS, times, ClimateLayout(spatial_chunk=4))
    write_climate_block(cube, 0, 0, values)
    finish_climate_cube(cube)
    return values


@pytest.mark.parametrize("where", ["local", "s3"])
def test_round_trip_and_series(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3_bucket")
    url = f"{root}/climate.zarr"
    values = make_cube(url)
    cube = open_climate_cube(url)
    assert cube.variables == tuple(VARS) and len(cube.times) == 30
    # points given in EPSG:4326 at pixel centres; series of 12 months ending at each date
    xs = GRID.x_coords()[[0, 6, 3]]
    ys = GRID.y_coords()[[0, 4, 2]]
    ends = np.array(["2015-12-15", "2017-06-01", "2016-03-31"], dtype="datetime64[D]")
    got = cube.read_series(xs, ys, 4326, ends, 12)
    assert got.shape == (3, 12, 3)
    np.testing.assert_array_equal(got[0], values[:, 0:12, 0, 0].T)
    np.testing.assert_array_equal(got[1], values[:, 18:30, 4, 6].T)
    np.testing.assert_array_equal(got[2], values[:, 3:15, 2, 3].T)
    assert (got[:, :, 2] == 0).all()


def test_series_from_another_crs_and_errors(tmp_path: Path) -> None:
    url = str(tmp_path / "c.zarr")
    values = make_cube(url)
    cube = open_climate_cube(url)
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 3035, always_xy=True).transform(GRID.x_coords()[2], GRID.y_coords()[1])
    got = cube.read_series(np.array([x]), np.array([y]), 3035, "2016-06-01", 6)
    np.testing.assert_array_equal(got[0], values[:, 12:18, 1, 2].T)
    with pytest.raises(ValueError, match="not inside the cube's time axis"):
        cube.read_series(np.array([8.1]), np.array([50.9]), 4326, "2015-06-01", 12)
    with pytest.raises(ValueError, match="outside the climate grid"):
        cube.read_series(np.array([20.0]), np.array([50.9]), 4326, "2016-06-01", 12)


def test_monthly_axis_is_checked() -> None:
    check_monthly(month_starts("2019-11", 4), "x")
    with pytest.raises(CubeValidationError, match="gap"):
        check_monthly(np.array(["2019-01-01", "2019-03-01"], dtype="datetime64[D]"), "store")
    with pytest.raises(CubeValidationError, match="not the first day"):
        check_monthly(np.array(["2019-01-15"], dtype="datetime64[D]"), "store")


def test_xarray_decodes_time_and_validation(tmp_path: Path) -> None:
    url = str(tmp_path / "c.zarr")
    make_cube(url)
    ds = xr.open_zarr(url, consolidated=False)
    assert ds.climate.dims == ("variable", "time", "y", "x")
    assert str(ds.time.values[0])[:10] == "2015-01-01"
    with pytest.raises(CubeValidationError, match=r"\['vpd'\] missing"):
        validate_climate_cube(url, ["pr", "vpd"])
    with pytest.raises(CubeValidationError, match="at least 61"):
        validate_climate_cube(url, min_months=61)
