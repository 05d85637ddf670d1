"""Shared plumbing of soilnet's Zarr v3 cubes: create, open by kind, completion mark, coordinates, CRS attributes.

A cube is created with the root attribute ``complete: False`` and marked complete by its writer once
every value is written (`mark_complete`); a read-only open refuses a cube still marked incomplete, so
an interrupted writer never leaves a cube that reads as valid. Cubes without the attribute (written
before it existed) count as complete. Marking a cube complete also writes consolidated metadata, so
plain ``xarray.open_zarr`` opens it in one read and without a warning; soilnet's own opens read each
node's metadata and never depend on it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr
from pyproj import CRS
from zarr.errors import ZarrUserWarning

from soilnet import storage
from soilnet.data.grid import Grid


class CubeValidationError(ValueError):
    """A store is not a valid soilnet cube; the message names the store, variable and problem."""


class CubeExistsError(FileExistsError):
    """A cube already exists where a new one would be written (pass overwrite to replace it)."""


#: Root attribute: False from creation until the writer calls `mark_complete`.
COMPLETE = "complete"


def create_group(url: str | os.PathLike[str], meta: Mapping[str, Any], overwrite: bool) -> zarr.Group:
    """Create a Zarr v3 group for a new cube, marked incomplete; refuses to replace an existing one unless asked."""
    where = storage.resolve(url).url
    if storage.exists(storage.join(where, "zarr.json")):
        if not overwrite:
            raise CubeExistsError(f"{where}: a cube already exists here (use --overwrite to replace it)")
        storage.remove(where)
    store = storage.zarr_store(where, read_only=False)
    return zarr.open_group(store, mode="w", zarr_format=3, attributes={**meta, COMPLETE: False})


def mark_complete(group: zarr.Group, complete: bool = True) -> None:
    """Mark a cube as completely written (and consolidate its metadata), or with ``complete=False``, as being
    written again."""
    group.attrs[COMPLETE] = complete
    if complete:
        with warnings.catch_warnings():  # "not in the v3 spec (yet)"; "<bookkeeping folder> is not a zarr node"
            warnings.simplefilter("ignore", ZarrUserWarning)
            zarr.consolidate_metadata(group.store, path=group.path, zarr_format=3)


def open_group(url: str | os.PathLike[str], kind: str, writable: bool = False) -> tuple[zarr.Group, dict[str, Any]]:
    """Open a cube's group and check it is a soilnet cube of the expected kind (read-only: and complete)."""
    where = storage.resolve(url).url
    if not storage.exists(storage.join(where, "zarr.json")):
        raise CubeValidationError(f"{where}: no Zarr v3 group here (zarr.json missing); expected a soilnet {kind}")
    store = storage.zarr_store(where, read_only=not writable)
    try:
        group = zarr.open_group(store, mode="r+" if writable else "r", zarr_format=3, use_consolidated=False)
    except (ValueError, KeyError, OSError) as exc:
        raise CubeValidationError(f"{where}: cannot open as a Zarr v3 group: {exc}") from exc
    meta = dict(group.attrs)
    found = meta.get("soilnet_kind")
    if found != kind:
        raise CubeValidationError(f"{where}: not a soilnet {kind} (soilnet_kind={found!r})")
    if not writable and meta.get(COMPLETE) is False:
        raise CubeValidationError(
            f"{where}: incomplete {kind}: its writer was interrupted (rerun it to resume, or --overwrite)"
        )
    return group, meta


def write_coord(
    group: zarr.Group, name: str, values: np.ndarray, dims: Sequence[str], attrs: Mapping[str, Any]
) -> None:
    """Write a small coordinate array in one chunk."""
    values = np.asarray(values)
    arr = group.create_array(
        name,
        shape=values.shape,
        dtype=values.dtype if values.dtype.kind != "U" else str,
        chunks=values.shape or "auto",
        dimension_names=tuple(dims),
        attributes=dict(attrs),
        fill_value=None if values.dtype.kind in "fiu" else "",
    )
    arr[...] = values


def crs_attrs(grid: Grid) -> dict[str, Any]:
    """CF grid-mapping attributes (``crs_wkt``, ``spatial_ref``, ``GeoTransform``) for rioxarray."""
    crs = CRS.from_epsg(grid.epsg)
    wkt = crs.to_wkt()
    cf = crs.to_cf()
    a, b, c, d, e, f = grid.transform
    return {
        **{k: v for k, v in cf.items() if isinstance(v, str | int | float)},
        "crs_wkt": wkt,
        "spatial_ref": wkt,
        "epsg": grid.epsg,
        "GeoTransform": f"{c} {a} {b} {f} {d} {e}",
    }
