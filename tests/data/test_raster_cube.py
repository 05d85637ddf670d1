"""Raster cube contract: round trips (local and S3), window reads, xarray/rioxarray, validation."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from soilnet.data.grid import Grid
from soilnet.data.raster_cube import (
    NODATA,
    CubeExistsError,
    CubeValidationError,
    RasterLayout,
    create_raster_cube,
    decode,
    encode,
    open_raster_cube,
    validate_raster_cube,
)

BANDS = ["SR_B1", "ndvi", "elevation"]
GRID = Grid.from_origin(3035, 4_000_000.0, 3_000_000.0, 30.0, 150, 100)


def make_values(seed: int = 0) -> np.ndarray:
    """Random float values that survive int16 encoding exactly (multiples of the band scale)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(-3000, 3000, (3, GRID.height, GRID.width)).astype(np.float64)
    values = raw * np.array([1e-4, 1e-4, 0.5])[:, None, None]
    values[:, 10:14, 20:30] = np.nan
    return values.astype(np.float32)


def write_cube(url: str, values: np.ndarray, layout: RasterLayout) -> None:
    writer = create_raster_cube(url, GRID, BANDS, layout, attrs={"made_by": "test"})
    for row0, col0, h, w in GRID.tiles(layout.shard):
        writer.write_tile(row0, col0, values[:, row0 : row0 + h, col0 : col0 + w])
    writer.finish()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_round_trip_and_windows(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3_bucket")
    url = f"{root}/cube.zarr"
    values = make_values()
    layout = RasterLayout(inner_chunk=16, shard=64)
    write_cube(url, values, layout)
    cube = open_raster_cube(url)
    assert cube.band_names == tuple(BANDS) and cube.grid == GRID and cube.attrs == {"made_by": "test"}
    raw = encode(values, cube.scale, cube.offset)
    np.testing.assert_array_equal(cube.bands[:], raw)
    # interior, border-touching and fully outside windows equal padded direct slices
    padded = np.pad(raw, ((0, 0), (40, 40), (40, 40)), constant_values=NODATA)
    for row0, col0, size in [(5, 7, 32), (-10, -3, 24), (GRID.height - 8, GRID.width - 30, 40), (-50, 0, 8)]:
        got = cube.read_raw(row0, col0, size, size)
        np.testing.assert_array_equal(got, padded[:, row0 + 40 : row0 + 40 + size, col0 + 40 : col0 + 40 + size])
    win = cube.read_window(-4, -4, 16, 16)
    assert np.isnan(win[:, :4]).all() and np.isnan(win[:, :, :4]).all()
    np.testing.assert_allclose(win[:, 4:, 4:], values[:, :12, :12], equal_nan=True, rtol=1e-6)
    # map-coordinate windows are centred on the pixel holding the point
    x, y = GRID.x_coords()[60], GRID.y_coords()[50]
    np.testing.assert_array_equal(cube.read_window_at(x, y, 10), cube.read_window(45, 55, 10, 10))


def test_readable_by_xarray_and_rioxarray(tmp_path: Path) -> None:
    import rioxarray  # noqa: F401

    url = str(tmp_path / "cube.zarr")
    values = make_values(1)
    write_cube(url, values, RasterLayout(inner_chunk=16, shard=64))
    ds = xr.open_zarr(url, consolidated=False)
    assert ds.bands.dims == ("band", "y", "x")
    assert list(ds.band.values) == BANDS
    assert ds.rio.crs.to_epsg() == 3035
    assert tuple(ds.rio.transform())[:6] == GRID.transform
    np.testing.assert_allclose(ds.x.values, GRID.x_coords())
    assert np.isnan(ds.bands.values[0, 10, 20])  # nodata masked by _FillValue
    decoded = ds.bands * ds.scale + ds.offset
    np.testing.assert_allclose(decoded.values, values, rtol=1e-6, atol=1e-6)
    assert ds.bands.encoding["shards"] == (3, 64, 64) and ds.bands.encoding["chunks"] == (3, 16, 16)


def test_encode_decode_clip_and_nodata() -> None:
    scale, offset = np.array([0.5]), np.array([10.0])
    values = np.array([[[10.0, 10.5, np.nan, 1e9, -1e9]]], dtype=np.float32)
    raw = encode(values, scale, offset)
    assert raw.tolist() == [[[0, 1, NODATA, 32767, -32767]]]
    back = decode(raw, scale, offset)
    assert np.isnan(back[0, 0, 2]) and back[0, 0, 1] == 10.5


def test_overwrite_protection(tmp_path: Path) -> None:
    url = str(tmp_path / "cube.zarr")
    create_raster_cube(url, GRID, BANDS)
    with pytest.raises(CubeExistsError, match="--overwrite"):
        create_raster_cube(url, GRID, BANDS)
    create_raster_cube(url, GRID, ["SR_B1"], overwrite=True).finish()
    assert open_raster_cube(url).band_names == ("SR_B1",)


def test_an_unfinished_cube_is_refused_until_its_writer_finishes(tmp_path: Path) -> None:
    url = str(tmp_path / "cube.zarr")
    writer = create_raster_cube(url, GRID, BANDS, RasterLayout(inner_chunk=16, shard=64))
    writer.write_tile(0, 0, make_values()[:, :64, :64])
    with pytest.raises(CubeValidationError, match=f"{re.escape(url)}: incomplete raster_cube.*--overwrite"):
        open_raster_cube(url)
    assert open_raster_cube(url, writable=True).band_names == tuple(BANDS)  # the writer's own view
    writer.finish()
    assert open_raster_cube(url).group.attrs["complete"] is True


def test_unaligned_and_wrong_tiles_are_rejected(tmp_path: Path) -> None:
    writer = create_raster_cube(str(tmp_path / "c.zarr"), GRID, BANDS, RasterLayout(inner_chunk=16, shard=64))
    with pytest.raises(ValueError, match="not aligned"):
        writer.write_tile(10, 0, np.zeros((3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="2 bands"):
        writer.write_tile(0, 0, np.zeros((2, 64, 64), np.float32))
    with pytest.raises(ValueError, match="landcover"):
        writer.write_tile(0, 0, np.zeros((3, 64, 64), np.float32), landcover=np.zeros((64, 64)))


def _break(url: str, array: str, key: str, value: object) -> None:
    meta_path = Path(url) / array / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta[key] = value
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda u: _break(u, "bands", "dimension_names", ["y", "x", "band"]), "expected ('band', 'y', 'x')"),
        (lambda u: _break(u, "bands", "data_type", "float32"), "expected int16"),
        (lambda u: _break(u, ".", "attributes", {"soilnet_kind": "something"}), "not a soilnet raster_cube"),
        (lambda u: zarr.open_group(u, mode="r+").attrs.update(grid={"epsg": 3035}), "'grid'"),
        (lambda u: zarr.open_group(u, mode="r+").attrs.pop("nodata"), "no nodata"),
        (lambda u: (Path(u) / "zarr.json").unlink(), "zarr.json missing"),
    ],
)
def test_validation_errors_name_store_and_problem(tmp_path: Path, breakage, message: str) -> None:
    url = str(tmp_path / "cube.zarr")
    create_raster_cube(url, GRID, BANDS).finish()
    breakage(url)
    with pytest.raises(CubeValidationError) as err:
        open_raster_cube(url)
    assert message in str(err.value) and url in str(err.value)


def test_required_bands_and_crs(tmp_path: Path) -> None:
    url = str(tmp_path / "cube.zarr")
    create_raster_cube(url, GRID, BANDS).finish()
    with pytest.raises(CubeValidationError, match=r"\['slope'\] missing"):
        validate_raster_cube(url, ["ndvi", "slope"])
    with pytest.raises(CubeValidationError, match="EPSG:3035, expected EPSG:5070"):
        validate_raster_cube(url, epsg=5070)


def test_corrupt_chunk_is_named(tmp_path: Path) -> None:
    url = str(tmp_path / "cube.zarr")
    write_cube(url, make_values(2), RasterLayout(inner_chunk=16, shard=64))
    shard = Path(url) / "bands" / "c" / "0" / "1" / "0"
    data = bytearray(shard.read_bytes())
    data[: len(data) // 2] = b"\x13" * (len(data) // 2)
    shard.write_bytes(bytes(data))
    cube = open_raster_cube(url)
    cube.read_raw(0, 0, 32, 32)  # other shards still read
    with pytest.raises(CubeValidationError, match="bands/c/0/1/0"):
        cube.read_raw(70, 10, 16, 16)
