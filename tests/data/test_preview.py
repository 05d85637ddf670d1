"""Previews are real PNGs read decimated from the cube."""

from pathlib import Path

import numpy as np

from soilnet.data.points import read_points
from soilnet.data.preview import decimated, write_demo_previews
from soilnet.data.raster_cube import open_raster_cube


def test_decimated_equals_strided_slice(tiny_demo) -> None:
    cube = open_raster_cube(tiny_demo.raster)
    values, step = decimated(cube, ["elevation", "ndvi"], max_px=70)
    assert step == 3
    full = cube.read_window(0, 0, cube.grid.height, cube.grid.width)[[12, 11]]
    np.testing.assert_array_equal(values, full[:, ::3, ::3])


def test_demo_previews_are_pngs(tiny_demo, tmp_path) -> None:
    points, _ = read_points(tiny_demo.points)
    written = write_demo_previews(
        open_raster_cube(tiny_demo.raster), open_raster_cube(tiny_demo.truth), points, tmp_path
    )
    assert len(written) == 5
    for path in written:
        data = Path(path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
