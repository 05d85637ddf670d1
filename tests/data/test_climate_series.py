"""Cached climate series equal the cube's own reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.climate_series import ClimateSeriesReader
from soilnet.data.demo_region import DemoConfig, generate_demo_region


def test_series_equal_direct_reads(tmp_path):
    paths = generate_demo_region(DemoConfig(width_km=6, height_km=6, n_points=20), str(tmp_path))
    cube = open_climate_cube(paths.climate)
    points = pd.read_parquet(paths.points)
    x, y, end = points["x"].to_numpy(), points["y"].to_numpy(), points["date"].to_numpy()
    reader = ClimateSeriesReader(cube, 3035, 61, max_chunks=1)
    got = reader.read(x, y, end)
    assert got.shape == (len(points), 61, 14) and got.dtype == np.float32
    np.testing.assert_array_equal(got, cube.read_series(x, y, 3035, end, 61))
    row, col = cube.pixels_of(x[:1], y[:1], 3035)
    start = int(cube.month_index(end[:1], 61)[0])
    np.testing.assert_array_equal(got[0], cube.data[:, start : start + 61, int(row[0]), int(col[0])].T)
    with pytest.raises(ValueError, match="months ending 2030-01 are not inside"):
        reader.read(x[:1], y[:1], np.array(["2030-01"], dtype="datetime64[M]"))
    with pytest.raises(ValueError, match="100 months asked"):
        ClimateSeriesReader(cube, 3035, 100)
