"""The map cube: a Zarr v3 group of (y, x) layers on the output grid, written one tile at a time.

Layers, per continuous target ``t``: ``t`` (ensemble mean) and ``t_std`` (predictive std), float32 with
NaN as nodata; per categorical target ``c`` (its vocabulary in the group attribute ``classes``): ``c``
(uint8 class code, 255 nodata), ``c_p_<label>`` and ``c_entropy`` (float32, see
`soilnet.mapping.classes`); and ``input_missing``, uint8: 1 where some input pixel of the output pixel was
nodata, 0 where none was, 255 outside the region. A layer's ``cog_scale`` attribute, when set, is the
value of one stored unit in its int16 COG (probabilities and entropy: 1e-4). Chunks are ``chunk_px`` square and tiles a
whole number of chunks, so two tiles never write to the same object. Georeferencing follows
the raster cube (``x``, ``y``, ``spatial_ref``), so ``xarray.open_zarr`` + rioxarray read it.
The group attributes hold the map settings; a cube is only ever extended with the same ones.
While a map job writes into it the cube is marked incomplete (`ensure_map_cube`), and the job marks
it complete when every tile is written, so read-only opens never see a half-written map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
import zarr.codecs

from soilnet import storage
from soilnet.data.grid import Grid
from soilnet.data.zarr_group import (
    CubeValidationError,
    create_group,
    crs_attrs,
    mark_complete,
    open_group,
    write_coord,
)
from soilnet.mapping.classes import CLASS_NODATA, PROBABILITY_SCALE, class_layer_names, entropy_layer

log = logging.getLogger(__name__)

KIND = "map_cube"
MISSING_LAYER = "input_missing"
MISSING_NODATA = 255
#: Settings a nightly run moves forward in an existing cube (tiles it changes are recomputed: model hash).
DATED_SETTINGS = ("climate_end",)


#: Layers of a calibrated bundle's area of applicability (`soilnet.mapping.reliability`): DI and the 0/1 AOA mask.
DI_LAYER, AOA_LAYER = "di", "aoa"
AOA_NODATA = 255
#: Value of one stored unit of the DI layer in its int16 COG.
DI_SCALE = 1e-3
#: Bounds of the interval layers ``<target>_lower_<pct>`` / ``<target>_upper_<pct>``.
BOUNDS = ("lower", "upper")


def interval_base(layer: str) -> str | None:
    """The target an interval layer bounds (``soc_g_kg_lower_90`` -> ``soc_g_kg``), else None."""
    for bound in BOUNDS:
        head, sep, pct = layer.rpartition(f"_{bound}_")
        if sep and head and pct.replace(".", "", 1).isdigit():
            return head
    return None


#: Units of a target read from the end of its name (``soc_g_kg`` is in g/kg); otherwise dimensionless.
UNIT_SUFFIXES = {"_g_kg": "g/kg", "_mg_kg": "mg/kg", "_g_cm3": "g/cm3", "_t_ha": "t/ha", "_pct": "%"}


def map_cube_url(out: str) -> str:
    """The map cube under a map job's output folder."""
    return storage.join(out, "map.zarr")


def units_of(layer: str) -> str:
    """Units of a mean, std or interval layer from its name; ``1`` when the name carries none."""
    base = interval_base(layer) or layer.removesuffix("_std")
    return next((unit for suffix, unit in UNIT_SUFFIXES.items() if base.endswith(suffix)), "1")


def layer_names(
    targets: Sequence[str], classes: Mapping[str, Sequence[str]] | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """All layers of a map of ``targets``, target by target, then the ``extra`` layers, then the missing-input mask.

    A continuous target has its mean and std; a categorical one (a key of ``classes``, its vocabulary)
    its class code, class probabilities and entropy. ``extra``: the layers of the bundle's calibration
    (intervals, ``di``, ``aoa``; `soilnet.mapping.reliability`).
    """
    classes = classes or {}
    layers = [n for t in targets for n in (class_layer_names(t, classes[t]) if t in classes else (t, f"{t}_std"))]
    return [*layers, *extra, MISSING_LAYER]


@dataclass
class MapCube:
    """An open map cube; its layer arrays are opened once, so a tile write sends only the chunks."""

    url: str
    group: zarr.Group
    grid: Grid
    targets: list[str]
    settings: dict[str, Any]
    arrays: dict[str, zarr.Array] = field(default_factory=dict, repr=False)
    classes: dict[str, list[str]] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)

    @property
    def layers(self) -> list[str]:
        """Layer names in order."""
        return layer_names(self.targets, self.classes, self.extra)

    @property
    def continuous(self) -> list[str]:
        """The continuous targets (mean and std layers), in order."""
        return [t for t in self.targets if t not in self.classes]

    @property
    def chunk_px(self) -> int:
        """Chunk side in pixels."""
        return int(self.arrays[MISSING_LAYER].chunks[0])

    def write_tile(self, row0: int, col0: int, mean: np.ndarray, std: np.ndarray, missing: np.ndarray) -> None:
        """Write a tile's layers: mean and std (continuous targets, h, w) float32, missing (h, w) uint8.

        Class layers of categorical targets go through `write_layers`.
        """
        k, h, w = mean.shape
        if k != len(self.continuous) or std.shape != mean.shape or missing.shape != (h, w):
            raise ValueError(
                f"{self.url}: tile layers {mean.shape} / {std.shape} / {missing.shape} do not match "
                f"{len(self.continuous)} continuous targets"
            )
        layers = {t: mean[i] for i, t in enumerate(self.continuous)}
        layers |= {f"{t}_std": std[i] for i, t in enumerate(self.continuous)}
        self.write_layers(row0, col0, {**layers, MISSING_LAYER: missing})

    def write_layers(self, row0: int, col0: int, layers: Mapping[str, np.ndarray]) -> None:
        """Write (h, w) windows of some layers at a chunk-aligned tile origin, cast to each layer's dtype."""
        unknown = [name for name in layers if name not in self.arrays]
        if unknown:
            raise ValueError(f"{self.url}: no layer(s) {unknown} (layers: {self.layers})")
        shapes = {np.shape(v) for v in layers.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"{self.url}: tile layers must share one (h, w) shape, got {sorted(shapes)}")
        chunk = self.chunk_px
        if row0 % chunk or col0 % chunk:
            raise ValueError(f"{self.url}: tile at ({row0}, {col0}) is not aligned to the {chunk} px chunks")
        h, w = next(iter(shapes))
        rows, cols = slice(row0, row0 + h), slice(col0, col0 + w)
        with storage.writing(f"{self.url}: cannot write the tile at rows {row0}:{row0 + h}, cols {col0}:{col0 + w}"):
            for name, values in layers.items():
                self.arrays[name][rows, cols] = np.asarray(values).astype(self.arrays[name].dtype)

    def read(self, layer: str, row0: int = 0, col0: int = 0, height: int | None = None, width: int | None = None):
        """A window of one layer as a NumPy array (the whole layer by default)."""
        if layer not in self.layers:
            raise ValueError(f"{self.url}: no layer {layer!r} (layers: {self.layers})")
        height = self.grid.height - row0 if height is None else height
        width = self.grid.width - col0 if width is None else width
        return np.asarray(self.arrays[layer][row0 : row0 + height, col0 : col0 + width])


def _class_attrs(name: str, classes: Mapping[str, Sequence[str]]) -> tuple[str, Any, dict[str, Any]] | None:
    """dtype, fill value and attributes of a layer of a categorical target; None for any other layer."""
    for target, labels in classes.items():
        names = class_layer_names(target, labels)
        if name == target:
            meanings = " ".join(n.removeprefix(f"{target}_p_") for n in names[1:-1])
            attrs = {"long_name": f"most probable class of {target} (255 outside the map)", "units": "1"}
            return "uint8", CLASS_NODATA, {**attrs, "flag_values": list(range(len(labels))), "flag_meanings": meanings}
        if name == entropy_layer(target):
            long_name = f"predictive entropy of {target} in nats (0 certain, ln {len(labels)} uniform)"
            return "float32", np.nan, {"long_name": long_name, "units": "1", "cog_scale": PROBABILITY_SCALE}
        if name in names:
            label = labels[names.index(name) - 1]
            long_name = f"probability of {target} class {label!r}"
            return "float32", np.nan, {"long_name": long_name, "units": "1", "cog_scale": PROBABILITY_SCALE}
    return None


def _layer_attrs(name: str, classes: Mapping[str, Sequence[str]]) -> tuple[str, Any, dict[str, Any]]:
    if name == MISSING_LAYER:
        attrs = {"long_name": "1 where some input pixel was nodata, 255 outside the region", "flag_values": [0, 1]}
        return "uint8", MISSING_NODATA, attrs
    categorical = _class_attrs(name, classes)
    if categorical is not None:
        return categorical
    if name == DI_LAYER:
        long_name = "dissimilarity index: distance to the nearest training point in the model's weighted embedding "
        long_name += "space / mean distance between training points (Meyer & Pebesma 2021)"
        return "float32", np.nan, {"long_name": long_name, "units": "1", "cog_scale": DI_SCALE}
    if name == AOA_LAYER:
        long_name = "area of applicability: 1 where di <= the threshold from the cross-validated training di, else 0"
        return "uint8", AOA_NODATA, {"long_name": long_name, "units": "1", "flag_values": [0, 1]}
    base = interval_base(name)
    if base is not None:
        bound, pct = name[len(base) + 1 :].split("_")
        long_name = f"{bound} bound of the {pct} % split-conformal prediction interval of {base}"
        return "float32", np.nan, {"long_name": long_name, "units": units_of(name)}
    base = name.removesuffix("_std")
    long_name = f"predictive standard deviation of {base}" if name.endswith("_std") else f"ensemble mean of {base}"
    return "float32", np.nan, {"long_name": long_name, "units": units_of(name)}


def create_map_cube(
    url: str | os.PathLike[str],
    grid: Grid,
    targets: Sequence[str],
    chunk_px: int,
    settings: Mapping[str, Any],
    classes: Mapping[str, Sequence[str]] | None = None,
    extra: Sequence[str] = (),
) -> MapCube:
    """Create an empty map cube (all nodata) for the output grid; ``classes``: vocabulary of each categorical target,
    ``extra``: the calibration's layers."""
    classes = {t: list(v) for t, v in (classes or {}).items()}
    stray = [t for t in classes if t not in targets]
    if stray:
        raise ValueError(f"classes given for {stray}, which are not map targets {list(targets)}")
    meta = {"soilnet_kind": KIND, "grid": grid.to_attrs(), "targets": list(targets), "settings": dict(settings)}
    group = create_group(url, {**meta, "classes": classes, "extra_layers": list(extra)}, overwrite=True)
    for name in layer_names(targets, classes, extra):
        dtype, fill, attrs = _layer_attrs(name, classes)
        group.create_array(
            name,
            shape=(grid.height, grid.width),
            dtype=dtype,
            chunks=(chunk_px, chunk_px),
            fill_value=fill,
            compressors=[zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
            dimension_names=("y", "x"),
            attributes={"grid_mapping": "spatial_ref", "_FillValue": None if dtype == "float32" else fill, **attrs},
        )
    write_coord(group, "x", grid.x_coords(), ("x",), {"standard_name": "projection_x_coordinate", "units": "m"})
    write_coord(group, "y", grid.y_coords(), ("y",), {"standard_name": "projection_y_coordinate", "units": "m"})
    write_coord(group, "spatial_ref", np.array(0, dtype=np.int32), (), crs_attrs(grid))
    log.info("created map cube %s: %d x %d px, layers %s", storage.resolve(url).url, grid.width, grid.height, targets)
    return open_map_cube(url, writable=True)


def open_map_cube(url: str | os.PathLike[str], writable: bool = False) -> MapCube:
    """Open a map cube; errors name the store and what is wrong."""
    group, meta = open_group(url, KIND, writable=writable)
    where = storage.resolve(url).url
    try:
        grid = Grid.from_attrs(meta["grid"])
        targets = [str(t) for t in meta["targets"]]
        classes = {str(t): [str(label) for label in v] for t, v in meta.get("classes", {}).items()}
        extra = [str(n) for n in meta.get("extra_layers", [])]
        names = layer_names(targets, classes, extra)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CubeValidationError(f"{where}: map cube attributes 'grid'/'targets'/'classes' invalid: {exc}") from exc
    arrays: dict[str, zarr.Array] = {}
    for name in names:
        node = group.get(name)
        if isinstance(node, zarr.Array):
            arrays[name] = node
    missing = [name for name in names if name not in arrays]
    if missing:
        raise CubeValidationError(f"{where}: map cube layers {missing} missing")
    return MapCube(where, group, grid, targets, dict(meta.get("settings", {})), arrays, classes, extra)


def ensure_map_cube(
    url: str | os.PathLike[str],
    grid: Grid,
    targets: Sequence[str],
    chunk_px: int,
    settings: Mapping[str, Any],
    overwrite: bool,
    classes: Mapping[str, Sequence[str]] | None = None,
    extra: Sequence[str] = (),
) -> MapCube:
    """The map cube to write into, marked incomplete: the existing one if made with the same settings, else a
    new one. The job marks it complete (`mark_complete`) once every tile is written.

    An existing cube made with other settings is an error unless ``overwrite`` replaces it.
    """
    where = storage.resolve(url).url
    if not overwrite and storage.exists(storage.join(where, "zarr.json")):
        cube = open_map_cube(where, writable=True)
        wanted = {"grid": grid.to_attrs(), "targets": list(targets), "chunk_px": chunk_px, **dict(settings)}
        found = {"grid": cube.grid.to_attrs(), "targets": cube.targets, "chunk_px": cube.chunk_px, **cube.settings}
        wanted["classes"] = {t: list(v) for t, v in (classes or {}).items()}
        found["classes"] = cube.classes
        wanted["extra_layers"], found["extra_layers"] = list(extra), cube.extra
        differ = sorted(
            k for k in wanted.keys() | found.keys() if k not in DATED_SETTINGS and wanted.get(k) != found.get(k)
        )
        if differ:
            raise CubeValidationError(
                f"{where}: existing map cube was made with other settings ({', '.join(differ)}); "
                "use --overwrite to replace it"
            )
        if any(cube.settings.get(k) != settings.get(k) for k in DATED_SETTINGS):
            cube.settings = {**cube.settings, **{k: settings.get(k) for k in DATED_SETTINGS}}
            cube.group.attrs["settings"] = cube.settings
        mark_complete(cube.group, False)
        return cube
    return create_map_cube(where, grid, targets, chunk_px, settings, classes, extra)
