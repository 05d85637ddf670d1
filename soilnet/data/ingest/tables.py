"""Reading soil sample files as distributed: CSV (BOM, ``;`` or ``,`` or tab, decimal commas) or Parquet,
and parsing their values ("12,5", "< 6", "<LOD", "n.d.") into numbers with a status per cell."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pandas as pd

from soilnet import storage

#: Cell texts meaning "no value".
MISSING_TOKENS = frozenset({"", "NA", "N/A", "NAN", "NONE", "NULL", "-", "--", "N.D.", "ND", "#N/A"})

OK, MISSING, BELOW_LIMIT, BELOW_UNKNOWN, NON_NUMERIC = 0, 1, 2, 3, 4
_BELOW = r"^<\s*=?\s*(?:LOD|LOQ|DL)?\s*(\d*[.,]?\d+)?\s*$"


class PointsInputError(ValueError):
    """A sample file cannot be read; the message names the file and the problem."""


def read_table(url: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows of a CSV (all cells as text) or Parquet file; an empty file is an error."""
    where = storage.resolve(url).url
    with storage.open_file(where, "rb") as f:
        payload = f.read()
    if not payload.strip():
        raise PointsInputError(f"{where}: empty file (no header, no rows)")
    if where.lower().endswith((".parquet", ".pq")):
        try:
            df = pd.read_parquet(io.BytesIO(payload))
        except (OSError, ValueError) as exc:
            raise PointsInputError(f"{where}: not a readable Parquet file ({exc})") from exc
    else:
        df = _read_csv(payload, where)
    if df.empty:
        raise PointsInputError(f"{where}: no data rows (header only)")
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


def _read_csv(payload: bytes, where: str) -> pd.DataFrame:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = payload.decode("latin-1")
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise PointsInputError(f"{where}: empty file (only a byte order mark, no header, no rows)")
    sep = max((";", ",", "\t"), key=lines[0].count)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise PointsInputError(f"{where}: not a readable CSV ({exc})") from exc


def parse_values(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers and a status per cell (OK, MISSING, BELOW_LIMIT with the limit as value, BELOW_UNKNOWN,
    NON_NUMERIC); infinite numbers ("inf", "1e400") are NON_NUMERIC."""
    n = len(column)
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.select([np.isnan(values), np.isinf(values)], [MISSING, NON_NUMERIC], OK).astype(np.int8)
    text = column.astype("string").str.strip().fillna("")
    missing = text.str.upper().isin(MISSING_TOKENS).to_numpy()
    below = text.str.match(_BELOW, case=False).fillna(False).to_numpy(dtype=bool)
    limit = text.str.extract(_BELOW, flags=re.IGNORECASE)[0].str.replace(",", ".", regex=False)
    limit_values = pd.to_numeric(limit, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    plain = text.str.replace(r"^([-+]?\d+),(\d+)$", r"\1.\2", regex=True)
    numbers = pd.to_numeric(plain, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    status = np.full(n, OK, dtype=np.int8)
    values = numbers.copy()
    status[~np.isfinite(numbers)] = NON_NUMERIC
    status[below] = np.where(np.isfinite(limit_values[below]), BELOW_LIMIT, BELOW_UNKNOWN)
    values[below] = limit_values[below]
    status[missing] = MISSING
    values[missing] = np.nan
    return values, status
