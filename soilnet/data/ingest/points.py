"""Soil sample files (LUCAS 2009 / 2015 / 2018 topsoil, RaCA sites, generic CSV / Parquet) -> points table.

Every input row ends either in the table or in the rejects file (next to the table) with its
1-based data row number (header not counted), a reason and a detail. Rules for below-detection
values, duplicates, out-of-region points and swapped coordinates are declared in
`PointsIngestConfig`; nothing is fixed silently unless a rule says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyproj import Transformer

from soilnet import storage
from soilnet.data.grid import Grid
from soilnet.data.ingest.config import PointSchema, PointsIngestConfig, TargetColumn
from soilnet.data.ingest.tables import (
    BELOW_LIMIT,
    BELOW_UNKNOWN,
    MISSING,
    NON_NUMERIC,
    OK,
    PointsInputError,
    parse_values,
    read_table,
)
from soilnet.data.points import write_points

log = logging.getLogger(__name__)

SWAPPED = "lat/lon swapped?"


def _t(*columns: str, factor: float = 1.0) -> TargetColumn:
    return TargetColumn(columns=list(columns), factor=factor)


_LUCAS_CHEMISTRY = {"soc_g_kg": _t("OC"), "n_g_kg": _t("N"), "p_mg_kg": _t("P"), "k_mg_kg": _t("K")}
_LUCAS_TEXTURE = ["clay_pct", "silt_pct", "sand_pct"]

#: Column layouts of the distributed survey files, checked against their published headers (test fixtures
#: `tests/data/ingest/fixtures.py` quote them). Units as distributed: OC, N, CaCO3 in g/kg, P and K in mg/kg,
#: EC in mS/m, texture in %. Each preset lists only what its survey publishes; a listed target missing from
#: a file is reported by the ingest. Clay, silt and sand all 0 means "not analysed" in LUCAS 2009 / 2015.
PRESETS: dict[str, PointSchema] = {
    # LUCAS_TOPSOIL_v1: POINT_ID, coarse, clay, silt, sand, pH_in_H2O, pH_in_CaCl, OC, CaCO3, N, P, K, CEC,
    # GPS_LAT, GPS_LONG (no sampling date, no EC).
    "lucas2009": PointSchema(
        source="LUCAS2009",
        id_columns=["POINT_ID", "POINTID", "Point_ID"],
        x_columns=["GPS_LONG", "Long", "long", "lon"],
        y_columns=["GPS_LAT", "Lat", "lat"],
        default_date=dt.date(2009, 6, 15),
        targets={
            **_LUCAS_CHEMISTRY,
            "clay_pct": _t("clay", "Clay"),
            "silt_pct": _t("silt", "Silt"),
            "sand_pct": _t("sand", "Sand"),
            "ph_h2o": _t("pH_in_H2O", "pH_H2O"),
            "ph_cacl2": _t("pH_in_CaCl", "pH_in_CaCl2", "pH_CaCl2"),
            "caco3_g_kg": _t("CaCO3"),
        },
        all_zero_is_missing=_LUCAS_TEXTURE,
    ),
    # LUCAS_Topsoil_2015_20200323.csv: OID_, Point_ID, long, lat, Clay, Sand, Silt, pH_CaCl2, pH_H20 (a zero),
    # EC, OC, CaCO3, P, N, K, LC, LU, NUTS_0..3, LC0_Desc, LC1_Desc, LU1_Desc (no sampling date).
    "lucas2015": PointSchema(
        source="LUCAS2015",
        id_columns=["Point_ID", "POINT_ID", "POINTID"],
        x_columns=["long", "GPS_LONG", "Long", "lon"],
        y_columns=["lat", "GPS_LAT", "Lat"],
        date_columns=["SURVEY_DATE", "Date"],
        date_format="%d-%m-%y",
        default_date=dt.date(2015, 6, 15),
        targets={
            **_LUCAS_CHEMISTRY,
            "clay_pct": _t("Clay", "clay"),
            "silt_pct": _t("Silt", "silt"),
            "sand_pct": _t("Sand", "sand"),
            "ph_h2o": _t("pH_H20", "pH_H2O", "pH(H20)", "pH(H2O)"),
            "ph_cacl2": _t("pH_CaCl2", "pH(CaCl2)"),
            "ec_ms_m": _t("EC"),
            "caco3_g_kg": _t("CaCO3"),
        },
        all_zero_is_missing=_LUCAS_TEXTURE,
    ),
    # LUCAS-SOIL-2018.csv: Depth, POINTID, pH_CaCl2, pH_H2O, EC, OC, CaCO3, P, N, K, OC (20-30 cm),
    # CaCO3 (20-30 cm), Ox_Al, Ox_Fe, NUTS_0..3, TH_LAT, TH_LONG, SURVEY_DATE, Elev, LC, LU, LC0_Desc,
    # LC1_Desc, LU1_Desc (no texture; Depth is "0-20 cm", or "0-10 cm" / "10-20 cm" for some soils).
    "lucas2018": PointSchema(
        source="LUCAS2018",
        id_columns=["POINTID", "POINT_ID", "Point_ID"],
        x_columns=["TH_LONG", "GPS_LONG", "Long", "lon"],
        y_columns=["TH_LAT", "GPS_LAT", "Lat", "lat"],
        date_columns=["SURVEY_DATE"],
        date_format="%d-%m-%y",
        default_date=dt.date(2018, 6, 15),
        depth_columns=["Depth"],
        targets={
            **_LUCAS_CHEMISTRY,
            "ph_h2o": _t("pH_H2O"),
            "ph_cacl2": _t("pH_CaCl2"),
            "ec_ms_m": _t("EC"),
            "caco3_g_kg": _t("CaCO3"),
        },
    ),
    "raca": PointSchema(
        source="RaCA",
        id_columns=["rcasiteid", "RaCA_Id", "upedonid"],
        x_columns=["Long", "Longitude", "lon"],
        y_columns=["Lat", "Latitude", "lat"],
        date_columns=["Year", "year"],
        date_format="%Y",
        default_date=dt.date(2010, 7, 1),
        depth_bottom_cm=30.0,
        targets={"soc_stock_t_ha": _t("SOCstock30", "SOC_stock_0_30", "soc_stock_30")},  # Mg/ha == t/ha
    ),
}


@dataclass(frozen=True)
class PointsIngestReport:
    """Counts of one points ingest, where its outputs went, and how each column of the table was filled."""

    output: str
    rejects: str
    rows: int
    kept: int
    rejected: dict[str, int]
    targets: dict[str, str] = field(default_factory=dict)
    missing_targets: list[str] = field(default_factory=list)
    date_source: str = ""
    depth_source: str = ""
    all_zero_missing: int = 0


class _Rejects:
    """Rejected rows collected during an ingest: the first reason found per row wins."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, "", dtype=object)
        self.detail = np.full(n, "", dtype=object)

    @property
    def alive(self) -> np.ndarray:
        """Rows not rejected so far."""
        return self.reason == ""

    def add(self, mask: np.ndarray, reason: str, details: np.ndarray | str = "") -> None:
        """Reject the rows of ``mask`` that are still alive, with a reason and a per-row detail."""
        mask = mask & self.alive
        self.reason[mask] = reason
        self.detail[mask] = details[mask] if isinstance(details, np.ndarray) else details


def schema_for(cfg: PointsIngestConfig) -> PointSchema:
    """The column mapping: the configured one, or the preset of the format."""
    return cfg.point_schema or PRESETS[cfg.format]


def _column(df: pd.DataFrame, aliases: list[str], what: str, where: str) -> str:
    for name in aliases:
        if name in df.columns:
            return name
    raise PointsInputError(f"{where}: no {what} column (looked for {aliases}; file has {list(df.columns)})")


def _dates(df: pd.DataFrame, schema: PointSchema, rejects: _Rejects) -> tuple[pd.Series, str]:
    """Sampling dates and how they were set (the column read, or the schema's default for every row)."""
    column = next((c for c in schema.date_columns if c in df.columns), None)
    if column is None:
        return (
            pd.Series(pd.Timestamp(schema.default_date), index=df.index),
            f"{schema.default_date} for every row (no date column: the {schema.source} default)",
        )
    raw = df[column].astype("string").str.strip()
    dates = pd.to_datetime(raw, format=schema.date_format, errors="coerce")
    blank = raw.isna() | (raw == "")
    dates[blank] = pd.Timestamp(schema.default_date) if schema.default_date else pd.NaT
    bad = dates.isna().to_numpy()
    rejects.add(bad, "bad date", np.array([f"{column}={v!r}" for v in raw.fillna("")], dtype=object))
    filled = f"; blank cells: {schema.default_date}" if schema.default_date and blank.any() else ""
    return dates, f"column {column}" + (f" ({schema.date_format})" if schema.date_format else "") + filled


_DEPTH = r"^\s*(\d+(?:[.,]\d+)?)\s*-\s*(\d+(?:[.,]\d+)?)\s*cm\s*$"


def _depths(df: pd.DataFrame, schema: PointSchema, rejects: _Rejects) -> tuple[np.ndarray, np.ndarray, str]:
    """Top and bottom of each row's layer in cm, and where they came from (a 'TOP-BOTTOM cm' column or the schema)."""
    column = next((c for c in schema.depth_columns if c in df.columns), None)
    top = np.full(len(df), schema.depth_top_cm)
    bottom = np.full(len(df), schema.depth_bottom_cm)
    fixed = f"{schema.depth_top_cm:g}-{schema.depth_bottom_cm:g} cm for every row"
    if column is None:
        return top, bottom, fixed + (f" (no {schema.depth_columns[0]} column)" if schema.depth_columns else "")
    raw = df[column].astype("string").str.strip().fillna("")
    parts = raw.str.extract(_DEPTH)
    upper, lower = (
        pd.to_numeric(parts[i].str.replace(",", "."), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        for i in (0, 1)
    )
    given = (raw != "").to_numpy(dtype=bool)
    with np.errstate(invalid="ignore"):
        ok = lower > upper  # False where either is NaN
    rejects.add(given & ~ok, "bad depth", np.array([f"{column}={v!r}" for v in raw], dtype=object))
    top, bottom = np.where(ok, upper, top), np.where(ok, lower, bottom)
    return top, bottom, f"column {column}; blank cells: {fixed.removesuffix(' for every row')}"


def _target_columns(df: pd.DataFrame, schema: PointSchema, where: str) -> dict[str, str]:
    """The source column of each schema target the file has; absent ones are logged as a warning."""
    found = {t: next((c for c in spec.columns if c in df.columns), None) for t, spec in schema.targets.items()}
    absent = {t: schema.targets[t].columns for t, c in found.items() if c is None}
    if len(absent) == len(found):
        raise PointsInputError(f"{where}: none of the target columns found (looked for {absent})")
    if absent:
        log.warning("%s: no column for targets %s (looked for %s)", where, list(absent), absent)
    return {t: c for t, c in found.items() if c is not None}


def _all_zero_missing(targets: dict[str, np.ndarray], schema: PointSchema) -> int:
    """Set the `all_zero_is_missing` targets to NaN in rows where all of them are 0; returns how many rows."""
    group = [t for t in schema.all_zero_is_missing if t in targets]
    if not group:
        return 0
    zero = np.all([targets[t] == 0 for t in group], axis=0)
    for t in group:
        targets[t] = np.where(zero, np.nan, targets[t])
    return int(zero.sum())


def _targets(
    df: pd.DataFrame, found: dict[str, str], schema: PointSchema, cfg: PointsIngestConfig, rejects: _Rejects
) -> dict[str, np.ndarray]:
    """Target values in target units; bad cells reject their row, below-detection cells follow the rule."""
    out: dict[str, np.ndarray] = {}
    for target, column in found.items():
        values, status = parse_values(df[column])
        raw = df[column].astype("string").fillna("").to_numpy(dtype=object)
        detail = np.array([f"{column}={v!r}" for v in raw], dtype=object)
        rejects.add(status == NON_NUMERIC, "non-numeric value", detail)
        below = (status == BELOW_LIMIT) | (status == BELOW_UNKNOWN)
        if cfg.below_detection == "reject":
            rejects.add(below, "below detection limit", detail)
        elif cfg.below_detection == "half":
            values = np.where(status == BELOW_LIMIT, values / 2, values)
        values = np.where((status == OK) | (status == BELOW_LIMIT), values, np.nan)
        factor = schema.targets[target].factor
        out[target] = values * factor
        negative = values < 0
        rejects.add(negative, "negative value", detail)
    return out


def _coordinates(
    df: pd.DataFrame, schema: PointSchema, cfg: PointsIngestConfig, grid: Grid | None, rejects: _Rejects, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xcol = _column(df, schema.x_columns, "x / longitude", where)
    ycol = _column(df, schema.y_columns, "y / latitude", where)
    x, xs = parse_values(df[xcol])
    y, ys = parse_values(df[ycol])
    pairs = np.array([f"{xcol}={a!r}, {ycol}={b!r}" for a, b in zip(df[xcol], df[ycol], strict=True)], dtype=object)
    rejects.add((xs == MISSING) | (ys == MISSING), "missing coordinates", pairs)
    rejects.add((xs != OK) | (ys != OK), "non-numeric coordinates", pairs)
    if schema.epsg == 4326:
        lon, lat = x, y
    else:
        lon, lat = Transformer.from_crs(schema.epsg, 4326, always_xy=True).transform(x, y)
    to_cube = Transformer.from_crs(4326, cfg.epsg, always_xy=True)

    def inside(lo: np.ndarray, la: np.ndarray) -> np.ndarray:
        ok = (np.abs(la) <= 90) & (np.abs(lo) <= 180)
        if cfg.region_lonlat is not None:
            w, s, e, n = cfg.region_lonlat
            ok &= (lo >= w) & (lo <= e) & (la >= s) & (la <= n)
        if grid is not None:
            with np.errstate(invalid="ignore"):
                gx, gy = Transformer.from_crs(4326, grid.epsg, always_xy=True).transform(lo, la)
            ok &= np.isfinite(gx) & grid.contains(np.nan_to_num(gx, nan=np.inf), np.nan_to_num(gy, nan=np.inf))
        return ok

    valid_range = (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    here, swapped_here = inside(lon, lat), inside(lat, lon)
    looks_swapped = ~here & swapped_here & (schema.epsg == 4326)
    if cfg.swapped_lat_lon == "fix":
        lon, lat = np.where(looks_swapped, lat, lon), np.where(looks_swapped, lon, lat)
        here = here | looks_swapped
        valid_range = valid_range | looks_swapped
    else:
        rejects.add(looks_swapped, SWAPPED, pairs)
    rejects.add(~valid_range, "coordinates out of range", pairs)
    if cfg.out_of_region == "reject":
        rejects.add(~here, "out of region", pairs)
    safe = rejects.alive
    cx = np.full(len(df), np.nan)
    cy = np.full(len(df), np.nan)
    cx[safe], cy[safe] = to_cube.transform(lon[safe], lat[safe])
    return lon, lat, cx, cy


def _duplicates(keys: pd.Series, rejects: _Rejects, rule: str, reason: str) -> None:
    alive = rejects.alive
    live = keys[alive]
    dup = live.duplicated(keep="first" if rule == "keep_first" else False)
    first_row = pd.Series(live.index, index=live.index).groupby(live.to_numpy()).transform("first") + 1
    mask = np.zeros(len(keys), dtype=bool)
    mask[live.index[dup.to_numpy()]] = True
    details = np.full(len(keys), "", dtype=object)
    details[live.index] = [f"first at row {r}" for r in first_row]
    rejects.add(mask, reason, details)


def ingest_points(
    url: str | os.PathLike[str],
    out_url: str | os.PathLike[str],
    cfg: PointsIngestConfig,
    grid: Grid | None = None,
    rejects_url: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> PointsIngestReport:
    """Read one sample file, harmonise it into a points table at ``out_url`` and write its rejects.

    ``grid`` (e.g. the raster cube's) adds a region check: points outside it follow ``out_of_region``.
    The rejects go to ``rejects_url`` (default: next to the table, ``<name>.rejects.csv``).
    """
    where = storage.resolve(url).url
    out = storage.resolve(out_url).url
    rejects_at = os.fspath(rejects_url) if rejects_url else out.rsplit(".", 1)[0] + ".rejects.csv"
    schema = schema_for(cfg)
    df = read_table(where)
    rejects = _Rejects(len(df))
    id_col = _column(df, schema.id_columns, "sample id", where)
    ids = df[id_col].astype("string").str.strip().fillna("")
    rejects.add((ids == "").to_numpy(), "missing id")
    lon, lat, x, y = _coordinates(df, schema, cfg, grid, rejects, where)
    dates, date_source = _dates(df, schema, rejects)
    top, bottom, depth_source = _depths(df, schema, rejects)
    found = _target_columns(df, schema, where)
    targets = _targets(df, found, schema, cfg, rejects)
    zeroed = _all_zero_missing(targets, schema)
    empty = np.all([np.isnan(v) for v in targets.values()], axis=0)
    rejects.add(empty, "no target value", f"all of {list(found.values())} missing or below detection")
    _duplicates(ids, rejects, cfg.duplicates, "duplicate id")
    place = pd.Series([f"{a:.6f},{b:.6f},{d}" for a, b, d in zip(lon, lat, dates, strict=True)], index=df.index)
    _duplicates(place, rejects, cfg.duplicates, "duplicate location and date")

    keep = rejects.alive
    table = pd.DataFrame(
        {
            "id": (schema.source + ":" + ids[keep]).to_numpy(),
            "lon": lon[keep],
            "lat": lat[keep],
            "x": x[keep],
            "y": y[keep],
            "date": pd.to_datetime(dates[keep]).dt.normalize().to_numpy(),
            "depth_top_cm": top[keep],
            "depth_bottom_cm": bottom[keep],
            "source": schema.source,
            **{t: v[keep] for t, v in targets.items()},
        }
    )
    write_points(table, out, cfg.epsg, overwrite=overwrite)
    rejected = _write_rejects(df, rejects, rejects_at)
    log.info("%s: %d rows kept, %d rejected %s", where, int(keep.sum()), sum(rejected.values()), rejected)
    if zeroed:
        log.info("%s: %d rows with %s all 0 (not analysed) got NaN for them", where, zeroed, schema.all_zero_is_missing)
    return PointsIngestReport(
        out,
        storage.resolve(rejects_at).url,
        len(df),
        int(keep.sum()),
        rejected,
        targets=found,
        missing_targets=[t for t in schema.targets if t not in found],
        date_source=date_source,
        depth_source=depth_source,
        all_zero_missing=zeroed,
    )


def _write_rejects(df: pd.DataFrame, rejects: _Rejects, url: str) -> dict[str, int]:
    bad = ~rejects.alive
    table = pd.DataFrame(
        {"source_row": np.flatnonzero(bad) + 1, "reason": rejects.reason[bad], "detail": rejects.detail[bad]}
    )
    table = pd.concat([table, df[bad].reset_index(drop=True).astype("string")], axis=1)
    with storage.open_file(url, "wb") as f:
        f.write(table.to_csv(index=False).encode())
    return dict(Counter(rejects.reason[bad].tolist()))
