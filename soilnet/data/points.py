"""The points table contract: one Parquet row per soil sample.

Columns: ``id`` (string), ``lon`` / ``lat`` (WGS84 degrees), ``x`` / ``y`` (cube CRS, metres),
``date`` (sampling date), ``depth_top_cm`` / ``depth_bottom_cm``, ``source`` (survey name),
then target columns with units in their names (``soc_g_kg``, ``ph_h2o``, ``n_g_kg``,
``clay_pct``, ``ec_ms_m``, ``caco3_g_kg``, ...); a missing value is NaN. The CRS of x / y is
stored in the file's metadata (``soilnet:epsg``). A target value predicted from spectra rather than
measured in a lab is marked in ``source`` (``<survey>+spectra:<model>``), its error (RMSE, the
target's unit) in ``<target>_error`` (`soilnet.spectra.labels`); training weighs such rows below
lab values (``finetune.spectral_label_weight``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from soilnet import storage
from soilnet.data.zarr_group import CubeExistsError

REQUIRED_COLUMNS: dict[str, str] = {
    "id": "string",
    "lon": "float64",
    "lat": "float64",
    "x": "float64",
    "y": "float64",
    "date": "date",
    "depth_top_cm": "float64",
    "depth_bottom_cm": "float64",
    "source": "string",
}

#: Known target columns and their units (suffix of the name).
TARGET_COLUMNS: dict[str, str] = {
    "soc_g_kg": "g/kg",
    "ph_h2o": "pH",
    "ph_cacl2": "pH",
    "n_g_kg": "g/kg",
    "p_mg_kg": "mg/kg",
    "k_mg_kg": "mg/kg",
    "clay_pct": "%",
    "silt_pct": "%",
    "sand_pct": "%",
    "ec_ms_m": "mS/m",
    "caco3_g_kg": "g/kg",
    "soc_stock_t_ha": "t/ha",
}

EPSG_KEY = b"soilnet:epsg"
#: Marks, in ``source``, a target value predicted from spectra (``<survey>+spectra:<model>``).
SPECTRAL_LABEL_MARK = "+spectra:"


def is_spectral_label(source: pd.Series) -> np.ndarray:
    """True for rows whose target values were predicted from spectra, not measured."""
    return source.astype(str).str.contains(SPECTRAL_LABEL_MARK, regex=False).to_numpy()


class PointsTableError(ValueError):
    """A points table violates the contract; the message names the file, column and row."""


def target_columns(df: pd.DataFrame) -> list[str]:
    """The target columns present in a table."""
    return [c for c in df.columns if c in TARGET_COLUMNS]


def validate_points(df: pd.DataFrame, where: str, targets: Sequence[str] = ()) -> None:
    """Check columns, types, uniqueness of ids and finiteness of coordinates and targets."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PointsTableError(f"{where}: columns {missing} missing (have {list(df.columns)})")
    for col in ("lon", "lat", "x", "y", "depth_top_cm", "depth_bottom_cm", *target_columns(df)):
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise PointsTableError(f"{where}: column {col!r} is {df[col].dtype}, expected numeric")
    for col in ("lon", "lat", "x", "y"):
        bad = ~np.isfinite(df[col].to_numpy(dtype=np.float64))
        if bad.any():
            raise PointsTableError(f"{where}: column {col!r} is not finite at row {int(np.argmax(bad))}")
    lon, lat = df["lon"].to_numpy(), df["lat"].to_numpy()
    if (np.abs(lat) > 90).any() or (np.abs(lon) > 180).any():
        row = int(np.argmax((np.abs(lat) > 90) | (np.abs(lon) > 180)))
        raise PointsTableError(f"{where}: row {row} has lon/lat ({lon[row]}, {lat[row]}) outside WGS84 range")
    dup = df["id"].duplicated()
    if dup.any():
        row = int(np.argmax(dup.to_numpy()))
        raise PointsTableError(f"{where}: id {df['id'].iloc[row]!r} at row {row} is duplicated")
    for t in targets:
        if t not in df.columns:
            raise PointsTableError(f"{where}: target column {t!r} missing (targets present: {target_columns(df)})")
        bad = ~np.isfinite(df[t].to_numpy(dtype=np.float64))
        if bad.any():
            raise PointsTableError(f"{where}: target {t!r} is NaN or infinite at row {int(np.argmax(bad))}")


def _arrow_table(df: pd.DataFrame, epsg: int) -> pa.Table:
    df = df.copy()
    df["id"] = df["id"].astype(str)
    df["source"] = df["source"].astype(str)
    df["date"] = pd.to_datetime(df["date"]).dt.date
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[EPSG_KEY] = json.dumps(epsg).encode()
    return table.replace_schema_metadata(meta)


def write_points(df: pd.DataFrame, url: str | os.PathLike[str], epsg: int, overwrite: bool = False) -> str:
    """Validate and write a points table to Parquet; refuses to replace a file unless asked."""
    where = storage.resolve(url).url
    validate_points(df, where)
    if storage.exists(where) and not overwrite:
        raise CubeExistsError(f"{where}: a points table already exists here (use --overwrite to replace it)")
    with storage.open_file(where, "wb") as f:
        pq.write_table(_arrow_table(df, epsg), f)
    return where


def read_points(url: str | os.PathLike[str], targets: Sequence[str] = ()) -> tuple[pd.DataFrame, int]:
    """Read and validate a points table; returns the table and the EPSG code of x / y."""
    where = storage.resolve(url).url
    with storage.open_file(where, "rb") as f:
        try:
            table = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PointsTableError(f"{where}: not a readable Parquet file: {exc}") from exc
    meta = table.schema.metadata or {}
    if EPSG_KEY not in meta:
        raise PointsTableError(f"{where}: no CRS for x / y (metadata key 'soilnet:epsg' missing)")
    df = table.to_pandas()
    df["date"] = pd.to_datetime(df["date"])
    validate_points(df, where, targets)
    return df, int(json.loads(meta[EPSG_KEY]))
