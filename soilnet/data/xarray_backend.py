"""soilnet cubes as xarray datasets in physical units: `open_cube` and the ``engine="soilnet"`` backend.

Plain ``xarray.open_zarr`` on a raster cube returns the stored integers (as float, nodata masked): the
per-band ``scale`` / ``offset`` are coordinates, which CF decoding does not apply, so reflectance comes
back 10,000 times too large. `open_cube` (also ``xr.open_dataset(url, engine="soilnet")``) returns
``bands`` decoded per band (value = raw * scale + offset, nodata as NaN) as float32, read lazily window
by window (nothing loads a whole cube), with the CRS written for rioxarray (``ds.rio.crs``). Climate and
map cubes are stored as physical values already and come back as stored, with the CRS set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr
import zarr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from soilnet import storage
from soilnet.data.grid import Grid
from soilnet.data.raster_cube import KIND as RASTER_KIND
from soilnet.data.raster_cube import RasterCube, decode, open_raster_cube
from soilnet.data.zarr_group import CubeValidationError, open_group


class DecodedBands(BackendArray):
    """The ``bands`` of a raster cube in physical units: each indexed read decodes only what it reads."""

    def __init__(self, cube: RasterCube) -> None:
        self.cube = cube
        self.shape = tuple(cube.bands.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        band = key[0]
        single = isinstance(band, int | np.integer)
        bands = slice(int(band), int(band) + 1) if single else band
        raw = self.cube.bands[(bands, *key[1:])]
        values = decode(np.asarray(raw), self.cube.scale[bands], self.cube.offset[bands], self.cube.nodata)
        return values[0] if single else values


def _decoded_raster(ds: xr.Dataset, url: str) -> xr.Dataset:
    cube = open_raster_cube(url)
    data = indexing.LazilyIndexedArray(DecodedBands(cube))
    attrs = {
        "long_name": "band values in physical units (raw * scale + offset; nodata as NaN)",
        "grid_mapping": "spatial_ref",
    }
    return ds.drop_vars(["scale", "offset"]).assign(bands=xr.Variable(("band", "y", "x"), data, attrs))


def open_cube(url: str | os.PathLike[str], drop_variables: Iterable[str] | None = None) -> xr.Dataset:
    """A soilnet raster, climate or map cube as a lazy xarray Dataset in physical units, CRS set for rioxarray.

    Errors name the store: not a Zarr v3 group, not a soilnet cube, or a cube whose writer did not finish.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    where = storage.resolve(url).url
    if not storage.exists(storage.join(where, "zarr.json")):
        raise CubeValidationError(f"{where}: no Zarr v3 group here (zarr.json missing); expected a soilnet cube")
    store = storage.zarr_store(where, read_only=True)
    kind = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False).attrs.get("soilnet_kind")
    if not isinstance(kind, str):
        raise CubeValidationError(f"{where}: not a soilnet cube (no soilnet_kind attribute)")
    _, meta = open_group(where, kind)  # refuses a cube still marked incomplete
    ds = xr.open_zarr(store, consolidated=False, chunks=None, drop_variables=drop_variables)
    if kind == RASTER_KIND and "bands" in ds:
        ds = _decoded_raster(ds, where)
    epsg = Grid.from_attrs(meta["grid"]).epsg
    return ds.rio.write_crs(f"EPSG:{epsg}", grid_mapping_name="spatial_ref")


class SoilnetBackend(BackendEntrypoint):
    """``xr.open_dataset(url, engine="soilnet")``: a soilnet cube decoded to physical units (see `open_cube`)."""

    description = "soilnet Zarr v3 cubes (raster, climate, map) decoded to physical units with the CRS set"
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(  # type: ignore[override]
        self, filename_or_obj: str | os.PathLike[str], *, drop_variables: Iterable[str] | None = None
    ) -> xr.Dataset:
        """Open a cube with `open_cube`."""
        return open_cube(filename_or_obj, drop_variables=drop_variables)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Never claimed implicitly: ask for it with ``engine="soilnet"``."""
        return False
