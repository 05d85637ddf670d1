"""The points table contract: one Parquet row per soil sample.

Columns: ``id`` (string), ``lon`` / ``lat`` (WGS84 degrees), ``x`` / ``y`` (cube CRS, metres),
``date`` (sampling date), ``depth_top_cm`` / ``depth_bottom_cm``, ``source`` (survey name),
then target columns with units in their names (``soc_g_kg``, ``ph_h2o``, ``n_g_kg``,
``clay_pct``, ``ec_ms_m``, ``caco3_g_kg``, ...); a missing value is NaN. The CRS of x / y is
stored in the file's metadata (``soilnet:epsg``). Class columns (``CLASS_COLUMNS``: binary
``permafrost``, multi-class ``taxonomy_order``) hold string labels (pandas ``string``, missing
<NA>); their vocabularies (sorted labels) are recorded in the metadata key ``soilnet:classes`` as
JSON ``{column: [labels...]}``, and a class code is a label's index in its vocabulary
(`class_vocabulary`, `class_codes`). A run that trains several targets allows missing labels per
target (``validate_points(..., allow_missing=True)``); a one-target run needs every label. A
target value predicted from spectra rather than measured in a lab is marked in ``source``
(``<survey>+spectra:<model>``), its error (RMSE, the target's unit) in ``<target>_error``
(`soilnet.spectra.labels`); training weighs such rows below lab values
(``finetune.spectral_label_weight``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

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

#: Known class columns and their kind: string labels, vocabulary in the metadata (``soilnet:classes``).
CLASS_COLUMNS: dict[str, str] = {
    "permafrost": "binary",
    "taxonomy_order": "multiclass",
}

EPSG_KEY = b"soilnet:epsg"
CLASSES_KEY = b"soilnet:classes"
#: Where `read_points` keeps the class vocabularies of the table it returns (``DataFrame.attrs``).
CLASSES_ATTR = "soilnet:classes"
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


def class_columns(df: pd.DataFrame) -> list[str]:
    """The class columns present in a table."""
    return [c for c in df.columns if c in CLASS_COLUMNS]


def _labels(column: pd.Series) -> np.ndarray:
    """The non-missing labels of a class column, as str."""
    return column[column.notna()].astype(str).to_numpy()


def _check_classes(df: pd.DataFrame, where: str, classes: Mapping[str, Sequence[str]]) -> None:
    for col in class_columns(df):
        if pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            raise PointsTableError(f"{where}: class column {col!r} is {df[col].dtype}, expected string labels")
        if col not in classes:
            raise PointsTableError(
                f"{where}: class column {col!r} has no vocabulary (metadata key 'soilnet:classes' lists "
                f"{sorted(classes)}; write the table with write_points)"
            )
        vocabulary = list(classes[col])
        if CLASS_COLUMNS[col] == "binary" and len(vocabulary) > 2:
            raise PointsTableError(f"{where}: binary class column {col!r} has {len(vocabulary)} classes {vocabulary}")
        known = df[col].isna().to_numpy() | df[col].astype(str).isin(vocabulary).to_numpy()
        if not known.all():
            row = int(np.argmin(known))
            raise PointsTableError(
                f"{where}: class column {col!r} has label {df[col].iloc[row]!r} at row {row}, "
                f"not in its vocabulary {vocabulary}"
            )


def _check_target(df: pd.DataFrame, where: str, target: str, allow_missing: bool) -> None:
    if target not in df.columns:
        present = target_columns(df) + class_columns(df)
        raise PointsTableError(f"{where}: target column {target!r} missing (targets present: {present})")
    if target in CLASS_COLUMNS:
        bad = df[target].isna().to_numpy()
    else:
        bad = ~np.isfinite(df[target].to_numpy(dtype=np.float64))
    if allow_missing and bad.all() and len(df):
        raise PointsTableError(f"{where}: target {target!r} has no label at all")
    if bad.any() and not allow_missing:
        raise PointsTableError(f"{where}: target {target!r} is NaN or infinite at row {int(np.argmax(bad))}")


def validate_points(
    df: pd.DataFrame,
    where: str,
    targets: Sequence[str] = (),
    classes: Mapping[str, Sequence[str]] | None = None,
    allow_missing: bool = False,
) -> None:
    """Check columns, types, uniqueness of ids, finiteness of coordinates and targets, and class labels.

    `classes` are the class vocabularies (default: those `read_points` left in ``df.attrs``); every
    label of a class column must be in its column's vocabulary. `targets` must be present and fully
    labelled, or, with `allow_missing` (several targets trained together), labelled somewhere.
    """
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
    _check_classes(df, where, df.attrs.get(CLASSES_ATTR, {}) if classes is None else classes)
    for t in targets:
        _check_target(df, where, t, allow_missing)


def class_vocabulary(df: pd.DataFrame) -> dict[str, list[str]]:
    """The class vocabularies of a table read by `read_points` (``{column: sorted labels}``)."""
    known = dict(df.attrs.get(CLASSES_ATTR, {}))
    missing = [c for c in class_columns(df) if c not in known]
    if missing:
        raise PointsTableError(f"class columns {missing} have no vocabulary: read the table with read_points")
    return known


def class_codes(labels: pd.Series, vocabulary: Sequence[str]) -> np.ndarray:
    """Class codes (float64: the label's index in `vocabulary`, NaN where missing) of a class column."""
    index = {label: code for code, label in enumerate(vocabulary)}
    codes = labels.map(lambda v: np.nan if pd.isna(v) else index.get(str(v), -1)).to_numpy(dtype=np.float64)
    if (codes < 0).any():
        row = int(np.argmax(codes < 0))
        raise PointsTableError(f"label {labels.iloc[row]!r} at row {row} is not in the vocabulary {list(vocabulary)}")
    return codes


def _arrow_table(df: pd.DataFrame, epsg: int, classes: Mapping[str, Sequence[str]]) -> pa.Table:
    df = df.copy()
    df["id"] = df["id"].astype(str)
    df["source"] = df["source"].astype(str)
    df["date"] = pd.to_datetime(df["date"]).dt.date
    for col in class_columns(df):
        df[col] = df[col].astype("string")
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[EPSG_KEY] = json.dumps(epsg).encode()
    meta[CLASSES_KEY] = json.dumps({c: list(classes[c]) for c in class_columns(df)}).encode()
    return table.replace_schema_metadata(meta)


def write_points(
    df: pd.DataFrame,
    url: str | os.PathLike[str],
    epsg: int,
    overwrite: bool = False,
    classes: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Validate and write a points table to Parquet; refuses to replace a file unless asked.

    The vocabulary of each class column is `classes`' entry, else (and else ``df.attrs``) its sorted
    labels; it is recorded in the metadata key ``soilnet:classes``.
    """
    where = storage.resolve(url).url
    given = {**df.attrs.get(CLASSES_ATTR, {}), **(classes or {})}
    vocab = {c: list(given[c]) if c in given else sorted(set(_labels(df[c]))) for c in class_columns(df)}
    validate_points(df, where, classes=vocab)
    if storage.exists(where) and not overwrite:
        raise CubeExistsError(f"{where}: a points table already exists here (use --overwrite to replace it)")
    with storage.open_file(where, "wb") as f:
        pq.write_table(_arrow_table(df, epsg, vocab), f)
    return where


def read_points(
    url: str | os.PathLike[str], targets: Sequence[str] = (), allow_missing: bool = False
) -> tuple[pd.DataFrame, int]:
    """Read and validate a points table; returns the table and the EPSG code of x / y.

    Class columns come back as pandas ``string`` and their vocabularies in ``df.attrs``
    (`class_vocabulary`); `targets` and `allow_missing` as in `validate_points`.
    """
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
    classes = json.loads(meta[CLASSES_KEY]) if CLASSES_KEY in meta else {}
    for col in class_columns(df):
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype("string")
    df.attrs[CLASSES_ATTR] = classes
    validate_points(df, where, targets, classes, allow_missing)
    return df, int(json.loads(meta[EPSG_KEY]))
