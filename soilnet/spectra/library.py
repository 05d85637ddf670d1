"""The spectral library: spectra keyed by sample id, with their axis, unit, fidelity and scan repeats.

A library is a folder (local or ``s3://``) with one Parquet file per fidelity, ``mir.parquet``,
``nir.parquet``, ``visnir.parquet``: one row per scan, columns ``id`` (string), ``repeat``
(int16, 0.. per id) and ``spectrum`` (fixed-size list of float32, in axis order). The axis
(ascending), its unit (``cm-1`` or ``nm``), the fidelity and the measured quantity (absorbance or
reflectance) are stored in the file's metadata under ``soilnet:spectra``. Samples join the points
table by ``id``: a point can carry lab values, spectra, or both.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from soilnet import storage
from soilnet.data.zarr_group import CubeExistsError

log = logging.getLogger(__name__)

Fidelity = Literal["MIR", "NIR", "visNIR"]
Unit = Literal["cm-1", "nm"]
Quantity = Literal["absorbance", "reflectance"]

FIDELITIES: tuple[str, ...] = ("MIR", "NIR", "visNIR")
UNITS: tuple[str, ...] = ("cm-1", "nm")
QUANTITIES: tuple[str, ...] = ("absorbance", "reflectance")
META_KEY = b"soilnet:spectra"


class SpectralLibraryError(ValueError):
    """A spectral library or table is unreadable or inconsistent; the message names the file, column or id."""


@dataclass(frozen=True)
class SpectralSet:
    """Scans of one fidelity: ``values`` (N, L) of the scans ``ids`` / ``repeats`` on an ascending ``axis`` (L,)."""

    ids: np.ndarray
    repeats: np.ndarray
    values: np.ndarray
    axis: np.ndarray
    unit: Unit
    fidelity: Fidelity
    quantity: Quantity

    def __post_init__(self) -> None:
        n, length = self.values.shape if self.values.ndim == 2 else (-1, -1)
        if self.values.ndim != 2:
            raise SpectralLibraryError(f"spectra must be (scans, points), got shape {self.values.shape}")
        if self.axis.shape != (length,):
            raise SpectralLibraryError(f"axis has {self.axis.size} values for {length} spectral points")
        if self.ids.shape != (n,) or self.repeats.shape != (n,):
            raise SpectralLibraryError(f"{n} spectra but {self.ids.size} ids and {self.repeats.size} repeat numbers")
        if length < 2 or not np.all(np.diff(self.axis) > 0):
            raise SpectralLibraryError("the spectral axis must hold at least 2 strictly ascending values")
        for name, value, allowed in (
            ("unit", self.unit, UNITS),
            ("fidelity", self.fidelity, FIDELITIES),
            ("quantity", self.quantity, QUANTITIES),
        ):
            if value not in allowed:
                raise SpectralLibraryError(f"{name} {value!r} is not one of {list(allowed)}")
        keys = pd.MultiIndex.from_arrays([self.ids, self.repeats])
        if keys.has_duplicates:
            sample, repeat = keys[keys.duplicated()][0]
            raise SpectralLibraryError(f"sample {sample!r} has scan repeat {repeat} more than once")

    @property
    def sample_ids(self) -> np.ndarray:
        """Distinct sample ids in order of first appearance."""
        return pd.unique(self.ids)

    def with_values(self, values: np.ndarray, axis: np.ndarray, quantity: Quantity) -> SpectralSet:
        """The same scans with new values on a new axis (a preprocessing result)."""
        return replace(self, values=values.astype(np.float32), axis=np.asarray(axis, np.float64), quantity=quantity)

    def select(self, sample_ids: np.ndarray) -> SpectralSet:
        """The scans of the given samples (any order; unknown ids are ignored)."""
        keep = np.isin(self.ids, np.asarray(sample_ids, dtype=str))
        return replace(self, ids=self.ids[keep], repeats=self.repeats[keep], values=self.values[keep])

    def mean_by_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(sample ids, mean spectrum of each sample's repeats (n_samples, L)), as OSSL averages repeat scans."""
        codes, uniques = pd.factorize(self.ids)
        sums = np.zeros((len(uniques), self.values.shape[1]), dtype=np.float64)
        np.add.at(sums, codes, self.values)
        counts = np.bincount(codes, minlength=len(uniques))
        return np.asarray(uniques, dtype=str), (sums / counts[:, None]).astype(np.float32)

    def views(self, sample_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Repeats per sample as (n_samples, max_repeats, L) (short samples padded with their first scan) and counts."""
        order = np.asarray(self.sample_ids if sample_ids is None else sample_ids, dtype=str)
        position = pd.Index(order)
        rows = position.get_indexer(self.ids)
        missing = np.setdiff1d(order, self.ids)
        if missing.size:
            raise SpectralLibraryError(f"{self.fidelity}: no spectrum for sample(s) {missing[:5].tolist()}")
        counts = np.bincount(rows[rows >= 0], minlength=len(order))
        out = np.empty((len(order), int(counts.max()), self.values.shape[1]), dtype=np.float32)
        slot = np.zeros(len(order), dtype=np.int64)
        for scan in np.flatnonzero(rows >= 0):
            out[rows[scan], slot[rows[scan]]] = self.values[scan]
            slot[rows[scan]] += 1
        for sample in np.flatnonzero(counts < out.shape[1]):
            out[sample, counts[sample] :] = out[sample, 0]
        return out, counts


def fidelity_file(url: str, fidelity: str) -> str:
    """The Parquet file of one fidelity in a library folder."""
    return storage.join(url, f"{fidelity.lower()}.parquet")


def _arrow(spectra: SpectralSet) -> pa.Table:
    length = spectra.values.shape[1]
    flat = pa.array(np.ascontiguousarray(spectra.values, dtype=np.float32).reshape(-1))
    table = pa.table(
        {
            "id": pa.array(spectra.ids.astype(str), pa.string()),
            "repeat": pa.array(spectra.repeats.astype(np.int16)),
            "spectrum": pa.FixedSizeListArray.from_arrays(flat, length),
        }
    )
    meta = {
        "axis": spectra.axis.tolist(),
        "unit": spectra.unit,
        "fidelity": spectra.fidelity,
        "quantity": spectra.quantity,
    }
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def write_spectra(spectra: SpectralSet, url: str, overwrite: bool = False, append: bool = False) -> str:
    """Write one fidelity's scans into the library at `url`; returns the file written.

    An existing file is replaced only with `overwrite`; with `append` the new scans are added to
    it if the axis, unit and quantity agree (a repeated ``(id, repeat)`` is an error naming the id).
    """
    where = storage.resolve(fidelity_file(url, spectra.fidelity)).url
    if storage.exists(where) and not overwrite:
        if not append:
            raise CubeExistsError(f"{where}: {spectra.fidelity} spectra exist here (use --overwrite or --append)")
        old = read_spectra(url, spectra.fidelity)
        if old.unit != spectra.unit or old.quantity != spectra.quantity or not np.array_equal(old.axis, spectra.axis):
            raise SpectralLibraryError(
                f"{where}: cannot append: stored {old.quantity} on {old.axis.size} points "
                f"({old.axis[0]:g}-{old.axis[-1]:g} {old.unit}), new {spectra.quantity} on {spectra.axis.size} "
                f"points ({spectra.axis[0]:g}-{spectra.axis[-1]:g} {spectra.unit})"
            )
        spectra = replace(
            spectra,
            ids=np.concatenate([old.ids, spectra.ids]),
            repeats=np.concatenate([old.repeats, spectra.repeats]),
            values=np.concatenate([old.values, spectra.values]),
        )
    storage.makedirs(url)
    with storage.open_file(where, "wb") as handle:
        pq.write_table(_arrow(spectra), handle)
    log.info("%s: %d %s scans of %d samples", where, len(spectra.ids), spectra.fidelity, len(spectra.sample_ids))
    return where


def read_spectra(url: str, fidelity: str) -> SpectralSet:
    """One fidelity's scans from the library at `url`; errors name the file."""
    where = storage.resolve(fidelity_file(url, fidelity)).url
    if not storage.exists(where):
        raise FileNotFoundError(f"{where}: no {fidelity} spectra in the library {url}")
    with storage.open_file(where, "rb") as handle:
        try:
            table = pq.read_table(handle)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SpectralLibraryError(f"{where}: not a readable Parquet file: {exc}") from exc
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise SpectralLibraryError(f"{where}: no spectral metadata (key {META_KEY.decode()!r})")
    meta = json.loads(raw)
    missing = [c for c in ("id", "repeat", "spectrum") if c not in table.column_names]
    if missing:
        raise SpectralLibraryError(f"{where}: columns {missing} missing")
    column = table.column("spectrum").combine_chunks()
    axis = np.asarray(meta["axis"], dtype=np.float64)
    values = column.flatten().to_numpy(zero_copy_only=False).reshape(len(table), axis.size)
    return SpectralSet(
        ids=np.asarray(table.column("id").to_pylist(), dtype=str),
        repeats=table.column("repeat").to_numpy().astype(np.int64),
        values=values.astype(np.float32),
        axis=axis,
        unit=meta["unit"],
        fidelity=meta["fidelity"],
        quantity=meta["quantity"],
    )


def library_fidelities(url: str) -> list[str]:
    """The fidelities stored in a library folder."""
    return [f for f in FIDELITIES if storage.exists(fidelity_file(url, f))]


def column_name(prefix: str, value: float) -> str:
    """The wide-table column of one axis value: ``prefix`` + the value (10 significant digits, no trailing ``.0``)."""
    return f"{prefix}{value:.10g}"


def join_points(points: pd.DataFrame, spectra: SpectralSet, prefix: str, how: str = "outer") -> pd.DataFrame:
    """The points table joined by ``id`` with each sample's mean spectrum as columns ``prefix<axis value>``.

    ``how="outer"`` keeps points without spectra (NaN spectra) and spectra without a point (NaN lab
    values), so a row can carry lab properties, spectra or both; ``"inner"`` keeps only samples with both.
    """
    if "id" not in points.columns:
        raise SpectralLibraryError(f"the points table has no 'id' column (columns: {list(points.columns)})")
    ids, means = spectra.mean_by_sample()
    columns = [column_name(prefix, v) for v in spectra.axis]
    clash = sorted(set(columns) & set(points.columns))
    if clash:
        raise SpectralLibraryError(
            f"points table columns {clash[:3]} collide with spectral columns of prefix {prefix!r}"
        )
    wide = pd.DataFrame(means, columns=columns)
    wide.insert(0, "id", ids)
    left = points.assign(id=points["id"].astype(str))
    return left.merge(wide, on="id", how=how, validate="one_to_one")
