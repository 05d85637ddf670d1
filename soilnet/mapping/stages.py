"""The three stages of the map pipeline as callable classes (Ray Data actors or plain objects).

Rows are dicts of NumPy arrays and scalars. The driver selects the tiles to compute from metadata
(`soilnet.mapping.changes`, `change_row`); `ReadStage` turns a tile row into its inputs (and, for cubes
without digests, drops tiles whose inputs hash as before);
`PredictStage` loads the model once and adds the layers; `WriteStage` writes the layers into the
tile's own chunks of the map cube and then the tile's done marker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from soilnet.data.raster_cube import decode
from soilnet.data.region import Tile
from soilnet.mapping.changes import CONTENT_KEY, SelectionSpec, TileChange
from soilnet.mapping.config import MapConfig
from soilnet.mapping.lease import check_lease
from soilnet.mapping.ledger import PREDICTING, REWRITE_SKIPPED, WRITTEN, RemoteLedger
from soilnet.mapping.manifest import TileMarker, read_row_markers, write_marker
from soilnet.mapping.map_cube import AOA_NODATA, MISSING_NODATA, open_map_cube
from soilnet.mapping.reader import TileReader
from soilnet.mapping.tiling import MapGrid

log = logging.getLogger(__name__)

Row = dict[str, Any]
TILE_FIELDS = ("row", "col", "row0", "col0", "height", "width")
#: Row keys of the calibration's layers (intervals, ``di``, ``aoa``): ``layer:<name>``.
LAYER_KEY = "layer:"


@dataclass
class MapJobSpec:
    """Everything the stages need, computed once by the driver (plain data, pickled to actors)."""

    cfg: MapConfig
    grid: MapGrid
    shapes: list[dict[str, Any]] | None
    bands: list[str]
    variables: list[str]
    months: int
    scale: np.ndarray
    offset: np.ndarray
    nodata: int
    map_url: str
    selection: SelectionSpec
    run_id: str = ""

    def marker(self, name: str, input_key: str) -> TileMarker:
        """The done marker of a tile computed from inputs with ``input_key``."""
        return TileMarker(name, input_key, self.selection.model_hash, self.selection.config_hash, self.run_id)


def tile_row(tile: Tile) -> Row:
    """A tile as a pipeline row."""
    return {"name": tile.name, **{k: getattr(tile, k) for k in TILE_FIELDS}}


def change_row(change: TileChange) -> Row:
    """A tile to compute as a pipeline row: the tile, its input key, its marker's key and the reason."""
    return {
        **tile_row(change.tile),
        "input_key": change.input_key,
        "marker_key": change.marker_key,
        "reason": change.reason,
    }


def row_tile(row: Row) -> Tile:
    """The tile a row describes."""
    return Tile(*(int(row[k]) for k in TILE_FIELDS))


class ReadStage:
    """Reads each tile once with its halo; for cubes without digests, drops tiles whose inputs hash as before."""

    def __init__(self, spec: MapJobSpec) -> None:
        cfg = spec.cfg
        self.spec = spec
        self.reader = TileReader(
            cfg.raster, cfg.climate, spec.grid, spec.bands, spec.variables, spec.months, cfg.climate_end, spec.shapes
        )

    def __call__(self, row: Row) -> list[Row]:
        tile = row_tile(row)
        inputs = self.reader.read(tile)
        input_key = str(row.get("input_key", "")) or CONTENT_KEY + inputs.content_hash()
        if row.get("reason") == "unknown" and input_key == str(row["marker_key"]):
            return []  # a cube without digests: read and hashed, unchanged
        return [
            {
                **tile_row(tile),
                "image": inputs.image,
                "series": inputs.series,
                "index": inputs.index,
                "inside": inputs.inside,
                "input_hash": input_key,
            }
        ]


def missing_masks(valid: np.ndarray, grid: MapGrid, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(any missing, all missing) per output pixel over its input block, from a (H, W) validity mask."""
    rows, cols = grid.block_index(height, width)
    block = valid[rows[:, :, None, None], cols[None, None, :, :]]  # h, b, w, b
    return ~block.all(axis=(1, 3)), ~block.any(axis=(1, 3))


class PredictStage:
    """Loads the model once (GPU when present) and predicts the layers of each tile (each start noted in ``ledger``)."""

    def __init__(self, spec: MapJobSpec, ledger: RemoteLedger | None = None) -> None:
        import torch  # here, not at the top: the driver imports this module, only predictors load the model

        from soilnet.mapping.model_source import load_ensemble

        torch.set_num_threads(spec.cfg.threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.spec = spec
        self.ledger = ledger
        self.model = load_ensemble(spec.cfg.model)

    def __call__(self, row: Row) -> Row:
        spec, cfg = self.spec, self.spec.cfg
        if self.ledger is not None:
            self.ledger.note(PREDICTING, str(row["name"]))
        start = time.perf_counter()
        raw = np.asarray(row["image"])
        image = decode(raw, spec.scale, spec.offset, spec.nodata)
        height, width = int(row["height"]), int(row["width"])
        mean, std, extra = self.model.predict_tile(
            image, np.asarray(row["series"]), np.asarray(row["index"]), spec.grid.stride, cfg.mode, cfg.batch_size
        )
        any_missing, all_missing = missing_masks((raw != spec.nodata).all(axis=0), spec.grid, height, width)
        inside = np.asarray(row["inside"], dtype=bool)
        nodata = all_missing | ~inside
        mean[:, nodata] = np.nan
        std[:, nodata] = np.nan
        for values in extra.values():
            values[nodata] = AOA_NODATA if values.dtype == np.uint8 else np.nan
        missing = np.where(inside, any_missing, MISSING_NODATA).astype(np.uint8)
        log.debug("predicted tile %s in %.2f s", row["name"], time.perf_counter() - start)
        return {
            **{k: row[k] for k in ("name", *TILE_FIELDS, "input_hash")},
            "mean": mean,
            "std": std,
            "missing": missing,
            **{LAYER_KEY + name: values for name, values in extra.items()},
        }


class WriteStage:
    """Writes each tile into its own chunks of the map cube, then its done marker; once per tile and run.

    Ray repeats a write whose output was lost with a node; the repeat finds the marker of its own run
    and writes nothing (noted in ``ledger``).
    """

    def __init__(self, spec: MapJobSpec, ledger: RemoteLedger | None = None) -> None:
        self.spec = spec
        self.ledger = ledger
        self.cube = open_map_cube(spec.map_url, writable=True)

    def __call__(self, row: Row) -> Row:
        name = str(row["name"])
        if self.spec.run_id:  # a killed driver's actors must not race the run that took over
            check_lease(self.spec.cfg.out, self.spec.run_id, self.spec.cfg.lease_ttl_s)
            done = read_row_markers(self.spec.cfg.out, [name]).get(name)
            if done is not None and done.run_id == self.spec.run_id:
                log.info("tile %s: already written by run %s (a repeated write): skipped", name, done.run_id)
                if self.ledger is not None:
                    self.ledger.note(REWRITE_SKIPPED, name)
                return {"name": name}
        self.cube.write_tile(
            int(row["row0"]),
            int(row["col0"]),
            np.asarray(row["mean"]),
            np.asarray(row["std"]),
            np.asarray(row["missing"]),
        )
        extra = {k.removeprefix(LAYER_KEY): np.asarray(v) for k, v in row.items() if k.startswith(LAYER_KEY)}
        if extra:
            self.cube.write_layers(int(row["row0"]), int(row["col0"]), extra)
        write_marker(self.spec.cfg.out, self.spec.marker(name, str(row["input_hash"])))
        if self.ledger is not None:
            self.ledger.note(WRITTEN, name)
        return {"name": name}
