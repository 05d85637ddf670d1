"""Wide spectral tables (CSV or Parquet, local or S3) into the spectral library.

A wide table has one row per scan: an id column, optionally a repeat column, other columns (lab
values, coordinates), and spectral columns named by a prefix and a wavelength or wavenumber with
an optional suffix: ``wn_4000.0``, ``wl_350``, ``scan_mir.600_abs``. Unit, fidelity and quantity
come from the caller or are inferred from the names (``wn``/``mir`` -> cm-1, ``wl``/``nir``/``nm``
-> nm, else the range) and logged. A spectral column holding text is refused, naming the column,
the row and the value; rows with gaps or non-finite values are listed in the report and kept out of
the library, never dropped silently. A sample id appearing on several rows gives scan repeats.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from soilnet import storage
from soilnet.spectra.library import (
    FIDELITIES,
    QUANTITIES,
    UNITS,
    SpectralLibraryError,
    SpectralSet,
    write_spectra,
)

log = logging.getLogger(__name__)

COLUMN = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9_.]*?[_.]?)(?P<value>\d+(?:\.\d+)?)(?P<suffix>_[A-Za-z]+)?$")
VALUE = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<suffix>_[A-Za-z]+)?$")
ABSORBANCE_SUFFIXES = ("_abs", "_a", "_absorbance")
REFLECTANCE_SUFFIXES = ("_ref", "_refl", "_r", "_reflectance")
#: At most this many gap rows are kept in a report (the count is always exact).
MAX_LISTED_GAPS = 50


@dataclass(frozen=True)
class SpectralColumns:
    """The spectral columns of a table in ascending axis order, their axis values, prefix and suffix."""

    names: list[str]
    axis: np.ndarray
    prefix: str
    suffix: str


@dataclass(frozen=True)
class GapRow:
    """A table row left out of the library: its row number, id and the columns that were blank or non-finite."""

    row: int
    id: str
    n_bad: int
    columns: list[str]


@dataclass
class IngestReport:
    """What an ingest read and wrote."""

    source: str
    fidelity: str
    unit: str
    quantity: str
    prefix: str
    n_points: int
    axis_range: tuple[float, float]
    n_scans: int = 0
    n_samples: int = 0
    n_gap_rows: int = 0
    gaps: list[GapRow] = field(default_factory=list)
    other_columns: list[str] = field(default_factory=list)
    inferred: list[str] = field(default_factory=list)
    written: str | None = None


def read_table(url: str) -> pd.DataFrame:
    """A CSV or Parquet table (by extension) from a local path or ``s3://``; errors name the file."""
    where = storage.resolve(url).url
    with storage.open_file(where, "rb") as handle:
        try:
            if where.lower().endswith((".parquet", ".pq")):
                return pd.read_parquet(handle)
            return pd.read_csv(handle, low_memory=False)
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise SpectralLibraryError(f"{where}: not a readable table: {exc}") from exc


def detect_prefix(columns: list[str]) -> str:
    """The prefix shared by the most columns of the form ``<prefix><number>[_suffix]``."""
    counts: dict[str, int] = {}
    for name in columns:
        match = COLUMN.match(str(name))
        if match:
            counts[match["prefix"]] = counts.get(match["prefix"], 0) + 1
    best = max(counts.items(), key=lambda kv: kv[1], default=(None, 0))
    if best[1] < 2:
        raise SpectralLibraryError(
            "no spectral columns found (expected names like wn_4000.0 or wl_350); pass --prefix. "
            f"Columns: {columns[:10]}"
        )
    return best[0]


def spectral_columns(columns: list[str], prefix: str | None = None) -> SpectralColumns:
    """The spectral columns of a table: names starting with `prefix` (detected if None) and a number.

    A column with the prefix whose rest is not a number (with an optional ``_suffix``), mixed
    suffixes and repeated axis values are errors naming the columns.
    """
    prefix = detect_prefix([str(c) for c in columns]) if prefix is None else prefix
    names, values, suffixes = [], [], set()
    for name in map(str, columns):
        if not name.startswith(prefix):
            continue
        match = VALUE.match(name[len(prefix) :])
        if match is None:
            raise SpectralLibraryError(
                f"column {name!r} has the spectral prefix {prefix!r} but no wavelength/wavenumber after it"
            )
        names.append(name)
        values.append(float(match["value"]))
        suffixes.add(match["suffix"] or "")
    if len(names) < 2:
        raise SpectralLibraryError(f"fewer than 2 columns start with the prefix {prefix!r}")
    if len(suffixes) > 1:
        raise SpectralLibraryError(f"spectral columns of prefix {prefix!r} mix the suffixes {sorted(suffixes)}")
    axis = np.asarray(values)
    order = np.argsort(axis, kind="stable")
    repeated = np.flatnonzero(np.diff(axis[order]) == 0)
    if repeated.size:
        a, b = names[order[repeated[0]]], names[order[repeated[0] + 1]]
        raise SpectralLibraryError(f"columns {a!r} and {b!r} name the same axis value {axis[order[repeated[0]]]:g}")
    return SpectralColumns([names[i] for i in order], axis[order], prefix, suffixes.pop())


def infer_unit(cols: SpectralColumns) -> tuple[str, str]:
    """(unit, how it was inferred) from the prefix, else from the axis range (wavenumbers reach above 2600)."""
    hint = cols.prefix.lower()
    if "wn" in hint or "mir" in hint or "cm" in hint:
        return "cm-1", f"unit cm-1 from the prefix {cols.prefix!r}"
    if "wl" in hint or "nir" in hint or "nm" in hint or "vis" in hint:
        return "nm", f"unit nm from the prefix {cols.prefix!r}"
    unit = "cm-1" if cols.axis[-1] > 2600 else "nm"
    return unit, f"unit {unit} from the axis range {cols.axis[0]:g}-{cols.axis[-1]:g}"


def infer_fidelity(unit: str, axis: np.ndarray) -> str:
    """MIR for wavenumbers; vis-NIR for wavelengths starting in the visible (< 700 nm), else NIR."""
    if unit == "cm-1":
        return "MIR"
    return "visNIR" if axis[0] < 700 else "NIR"


def infer_quantity(suffix: str, fidelity: str) -> str:
    """Absorbance or reflectance from the suffix, else the convention (MIR absorbance, NIR reflectance)."""
    if suffix.lower() in ABSORBANCE_SUFFIXES:
        return "absorbance"
    if suffix.lower() in REFLECTANCE_SUFFIXES:
        return "reflectance"
    return "absorbance" if fidelity == "MIR" else "reflectance"


def numeric_block(table: pd.DataFrame, names: list[str], where: str) -> np.ndarray:
    """The spectral columns as float64 (rows, columns); text that is not a number is an error naming the cell."""
    block = np.empty((len(table), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = table[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            block[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        parsed = pd.to_numeric(column, errors="coerce")
        text = column.astype("string").str.strip()
        unreadable = parsed.isna() & column.notna() & (text != "") & ~text.str.lower().isin(["nan", "na", "inf"])
        if unreadable.any():
            row = int(np.argmax(unreadable.to_numpy()))
            raise SpectralLibraryError(f"{where}: column {name!r} is not numeric: row {row} holds {column.iloc[row]!r}")
        block[:, j] = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return block


def gap_rows(block: np.ndarray, ids: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[GapRow]]:
    """(mask of rows with a blank or non-finite value, the first `MAX_LISTED_GAPS` of them described)."""
    bad = ~np.isfinite(block)
    rows = np.flatnonzero(bad.any(axis=1))
    listed = [
        GapRow(int(r), str(ids[r]), int(bad[r].sum()), [names[c] for c in np.flatnonzero(bad[r])[:5]])
        for r in rows[:MAX_LISTED_GAPS]
    ]
    return bad.any(axis=1), listed


def scan_repeats(ids: np.ndarray, table: pd.DataFrame, repeat_column: str | None, where: str) -> np.ndarray:
    """Repeat numbers: the repeat column if given, else 0, 1, ... in order of appearance per id."""
    if repeat_column is None:
        return pd.Series(ids).groupby(ids).cumcount().to_numpy()
    if repeat_column not in table.columns:
        raise SpectralLibraryError(f"{where}: repeat column {repeat_column!r} missing")
    values = pd.to_numeric(table[repeat_column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < 0))
    if bad.size:
        raise SpectralLibraryError(
            f"{where}: column {repeat_column!r} needs repeat numbers 0, 1, ...: row {bad[0]} holds "
            f"{table[repeat_column].iloc[bad[0]]!r}"
        )
    return values.astype(np.int64)


def parse_table(
    table: pd.DataFrame,
    where: str,
    prefix: str | None = None,
    id_column: str = "id",
    repeat_column: str | None = None,
    unit: str | None = None,
    fidelity: str | None = None,
    quantity: str | None = None,
) -> tuple[SpectralSet, IngestReport]:
    """The complete scans of a wide table as a `SpectralSet`, and the report (gap rows, inferences)."""
    for name, value, allowed in (
        ("unit", unit, UNITS),
        ("fidelity", fidelity, FIDELITIES),
        ("quantity", quantity, QUANTITIES),
    ):
        if value is not None and value not in allowed:
            raise SpectralLibraryError(f"{name} {value!r} is not one of {list(allowed)}")
    if id_column not in table.columns:
        raise SpectralLibraryError(f"{where}: id column {id_column!r} missing (columns: {list(table.columns)[:10]})")
    cols = spectral_columns(list(table.columns), prefix)
    inferred = []
    if unit is None:
        unit, how = infer_unit(cols)
        inferred.append(how)
    if fidelity is None:
        fidelity = infer_fidelity(unit, cols.axis)
        inferred.append(f"fidelity {fidelity} from the unit and range")
    if quantity is None:
        quantity = infer_quantity(cols.suffix, fidelity)
        inferred.append(f"quantity {quantity} from the suffix {cols.suffix!r} / the {fidelity} convention")
    for line in inferred:
        log.info("%s: %s", where, line)
    raw_ids = table[id_column]
    missing_id = raw_ids.isna() | (raw_ids.astype("string").str.strip() == "")
    if missing_id.any():
        raise SpectralLibraryError(f"{where}: row {int(np.argmax(missing_id.to_numpy()))} has no {id_column!r}")
    ids = raw_ids.astype(str).to_numpy()
    repeats = scan_repeats(ids, table, repeat_column, where)
    block = numeric_block(table, cols.names, where)
    bad, listed = gap_rows(block, ids, cols.names)
    if bad.any():
        log.warning(
            "%s: %d row(s) with gaps or non-finite values left out, e.g. row %d", where, bad.sum(), listed[0].row
        )
    if bad.all():
        raise SpectralLibraryError(f"{where}: every row has gaps or non-finite spectral values")
    keep = ~bad
    spectra = SpectralSet(ids[keep], repeats[keep], block[keep].astype(np.float32), cols.axis, unit, fidelity, quantity)
    spectral = set(cols.names) | {id_column, repeat_column}
    report = IngestReport(
        source=where,
        fidelity=fidelity,
        unit=unit,
        quantity=quantity,
        prefix=cols.prefix,
        n_points=len(cols.names),
        axis_range=(float(cols.axis[0]), float(cols.axis[-1])),
        n_scans=int(keep.sum()),
        n_samples=len(spectra.sample_ids),
        n_gap_rows=int(bad.sum()),
        gaps=listed,
        other_columns=[str(c) for c in table.columns if c not in spectral],
        inferred=inferred,
    )
    return spectra, report


def ingest_table(
    url: str, library: str, overwrite: bool = False, append: bool = False, **options: str | None
) -> IngestReport:
    """Read a wide table at `url` and write its complete scans into the library at `library`."""
    where = storage.resolve(url).url
    spectra, report = parse_table(read_table(url), where, **options)
    report.written = write_spectra(spectra, library, overwrite=overwrite, append=append)
    return report
