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
from dataclasses import dataclass

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


_LUCAS_TEXTURE = {"clay_pct": _t("clay", "Clay"), "silt_pct": _t("silt", "Silt"), "sand_pct": _t("sand", "Sand")}
_LUCAS_CHEMISTRY = {"soc_g_kg": _t("OC"), "n_g_kg": _t("N"), "p_mg_kg": _t("P"), "k_mg_kg": _t("K")}

#: Column layouts of the distributed survey files (LUCAS OC and N in g/kg, P and K in mg/kg).
PRESETS: dict[str, PointSchema] = {
    "lucas2009": PointSchema(
        source="LUCAS2009",
        id_columns=["POINT_ID", "POINTID", "Point_ID"],
        x_columns=["GPS_LONG", "Long", "long", "lon"],
        y_columns=["GPS_LAT", "Lat", "lat"],
        default_date=dt.date(2009, 6, 15),
        targets={
            **_LUCAS_CHEMISTRY,
            **_LUCAS_TEXTURE,
            "ph_h2o": _t("pH_in_H2O", "pH_H2O"),
            "ph_cacl2": _t("pH_in_CaCl", "pH_in_CaCl2", "pH_CaCl2"),
        },
    ),
    "lucas2015": PointSchema(
        source="LUCAS2015",
        id_columns=["Point_ID", "POINT_ID", "POINTID"],
        x_columns=["GPS_LONG", "Long", "long", "lon"],
        y_columns=["GPS_LAT", "Lat", "lat"],
        date_columns=["Date", "SURVEY_DATE"],
        date_format="%d-%m-%y",
        default_date=dt.date(2015, 6, 15),
        targets={
            **_LUCAS_CHEMISTRY,
            **_LUCAS_TEXTURE,
            "ph_h2o": _t("pH(H20)", "pH(H2O)", "pH_H2O"),
            "ph_cacl2": _t("pH(CaCl2)", "pH_CaCl2"),
        },
    ),
    "lucas2018": PointSchema(
        source="LUCAS2018",
        id_columns=["POINTID", "POINT_ID", "Point_ID"],
        x_columns=["TH_LONG", "GPS_LONG", "Long", "lon"],
        y_columns=["TH_LAT", "GPS_LAT", "Lat", "lat"],
        date_columns=["SURVEY_DATE"],
        date_format="%d-%m-%y",
        default_date=dt.date(2018, 6, 15),
        targets={**_LUCAS_CHEMISTRY, "ph_h2o": _t("pH_H2O"), "ph_cacl2": _t("pH_CaCl2")},
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
    """Counts of one points ingest and where its outputs went."""

    output: str
    rejects: str
    rows: int
    kept: int
    rejected: dict[str, int]


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


def _dates(df: pd.DataFrame, schema: PointSchema, rejects: _Rejects) -> pd.Series:
    column = next((c for c in schema.date_columns if c in df.columns), None)
    if column is None:
        return pd.Series(pd.Timestamp(schema.default_date), index=df.index)
    raw = df[column].astype("string").str.strip()
    dates = pd.to_datetime(raw, format=schema.date_format, errors="coerce")
    blank = raw.isna() | (raw == "")
    dates[blank] = pd.Timestamp(schema.default_date) if schema.default_date else pd.NaT
    bad = dates.isna().to_numpy()
    rejects.add(bad, "bad date", np.array([f"{column}={v!r}" for v in raw.fillna("")], dtype=object))
    return dates


def _targets(
    df: pd.DataFrame, schema: PointSchema, cfg: PointsIngestConfig, rejects: _Rejects, where: str
) -> dict[str, np.ndarray]:
    """Target values in target units; bad cells reject their row, below-detection cells follow the rule."""
    found = {t: next((c for c in spec.columns if c in df.columns), None) for t, spec in schema.targets.items()}
    found = {t: c for t, c in found.items() if c is not None}
    if not found:
        wanted = {t: spec.columns for t, spec in schema.targets.items()}
        raise PointsInputError(f"{where}: none of the target columns found (looked for {wanted})")
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
    empty = np.all([np.isnan(v) for v in out.values()], axis=0)
    rejects.add(empty, "no target value", f"all of {list(found.values())} missing or below detection")
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
    dates = _dates(df, schema, rejects)
    targets = _targets(df, schema, cfg, rejects, where)
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
            "depth_top_cm": schema.depth_top_cm,
            "depth_bottom_cm": schema.depth_bottom_cm,
            "source": schema.source,
            **{t: v[keep] for t, v in targets.items()},
        }
    )
    write_points(table, out, cfg.epsg, overwrite=overwrite)
    rejected = _write_rejects(df, rejects, rejects_at)
    log.info("%s: %d rows kept, %d rejected %s", where, int(keep.sum()), sum(rejected.values()), rejected)
    return PointsIngestReport(out, storage.resolve(rejects_at).url, len(df), int(keep.sum()), rejected)


def _write_rejects(df: pd.DataFrame, rejects: _Rejects, url: str) -> dict[str, int]:
    bad = ~rejects.alive
    table = pd.DataFrame(
        {"source_row": np.flatnonzero(bad) + 1, "reason": rejects.reason[bad], "detail": rejects.detail[bad]}
    )
    table = pd.concat([table, df[bad].reset_index(drop=True).astype("string")], axis=1)
    with storage.open_file(url, "wb") as f:
        f.write(table.to_csv(index=False).encode())
    return dict(Counter(rejects.reason[bad].tolist()))
