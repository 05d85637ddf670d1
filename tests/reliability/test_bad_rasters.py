"""GeoTIFFs and NetCDF files truncated or lying about their size: clear errors naming the file, no complete cube."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from soilnet import storage
from soilnet.data.ingest.climate import ClimateIngestError, ingest_climate
from soilnet.data.ingest.config import ClimateIngestConfig, RasterIngestConfig
from soilnet.data.ingest.raster import RasterIngestError, ingest_rasters
from soilnet.data.ingest.resume import is_complete
from soilnet.data.raster_cube import RasterLayout, open_raster_cube
from soilnet.data.zarr_group import CubeValidationError

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
LAYOUT = RasterLayout(inner_chunk=16, shard=32)
BANDS = ["elevation", "slope"]
INGEST = RasterIngestConfig(source_bands=BANDS)


def _patch_tiff_tag(payload: bytes, tag: int, value: int) -> bytes:
    """Overwrite a SHORT/LONG tag value in the first IFD of a little-endian TIFF (e.g. 256 ImageWidth)."""
    data = bytearray(payload)
    assert data[:4] == b"II*\0"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        found, kind = struct.unpack_from("<HH", data, entry)
        if found == tag:
            struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, value)
            return bytes(data)
    raise KeyError(tag)


def _ingest(path: Path, gen) -> str:
    cube = str(path.with_suffix(".zarr"))
    ingest_rasters([str(path)], cube, gen.target_grid(size=96), BANDS, INGEST, LAYOUT)
    return cube


def _no_complete_cube(cube: str) -> None:
    if storage.exists(storage.join(cube, "zarr.json")):
        with pytest.raises(CubeValidationError, match="incomplete raster_cube"):
            open_raster_cube(cube)
        assert not is_complete(open_raster_cube(cube, writable=True).group)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_a_truncated_geotiff_is_named_and_leaves_no_complete_cube(gen, tmp_path, keep):
    payload = Path(gen.write_scene(str(tmp_path / "scene.tif"), "utm_uint16")).read_bytes()
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(payload[: int(len(payload) * keep)])
    with pytest.raises(RasterIngestError, match=re.escape(str(bad))):
        _ingest(bad, gen)
    _no_complete_cube(str(bad.with_suffix(".zarr")))


def test_a_truncated_geotiff_is_refused_before_the_cube_is_touched(gen, tmp_path):
    payload = Path(gen.write_scene(str(tmp_path / "scene.tif"), "utm_uint16")).read_bytes()
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(RasterIngestError, match=re.escape(str(bad))):
        _ingest(bad, gen)
    assert not storage.exists(str(bad.with_suffix(".zarr")))


def test_a_geotiff_claiming_more_columns_than_it_holds_is_named(gen, tmp_path):
    payload = Path(gen.write_scene(str(tmp_path / "scene.tif"), "utm_uint16")).read_bytes()
    bad = tmp_path / "wide.tif"
    bad.write_bytes(_patch_tiff_tag(payload, 256, 96 * 4))
    with pytest.raises(RasterIngestError, match=re.escape(str(bad))):
        _ingest(bad, gen)
    _no_complete_cube(str(bad.with_suffix(".zarr")))


def test_a_geotiff_claiming_fewer_columns_than_it_holds_is_refused(gen, tmp_path):
    payload = Path(gen.write_scene(str(tmp_path / "scene.tif"), "utm_uint16")).read_bytes()
    bad = tmp_path / "narrow.tif"
    bad.write_bytes(_patch_tiff_tag(payload, 256, 40))
    with pytest.raises(RasterIngestError, match=re.escape(str(bad))):
        _ingest(bad, gen)


@pytest.mark.parametrize("keep", [0.05, 0.6, 0.99])
def test_a_truncated_netcdf_is_named_and_no_cube_is_made(gen, tmp_path, keep):
    (url,) = gen.write_terraclimate(str(tmp_path), ["pr"], [2020])
    bad = tmp_path / "TerraClimate_pr_cut.nc"
    bad.write_bytes(Path(url).read_bytes()[: int(Path(url).stat().st_size * keep)])
    with pytest.raises(ClimateIngestError, match=re.escape(str(bad))):
        ingest_climate([str(bad)], str(tmp_path / "climate.zarr"), ClimateIngestConfig(variables=["pr"]))
    assert not storage.exists(str(tmp_path / "climate.zarr"))
