"""Points ingest: each LUCAS survey layout, RaCA, generic tables, declared rules and the rejects file."""

from __future__ import annotations

import io
import logging
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from soilnet import storage
from soilnet.data.ingest.config import PointSchema, PointsIngestConfig, TargetColumn
from soilnet.data.ingest.points import ingest_points
from soilnet.data.ingest.tables import PointsInputError
from soilnet.data.points import read_points

EUROPE = (-25.0, 34.0, 45.0, 72.0)
GERMANY_SW = (7.0, 47.0, 10.0, 49.5)


def rejects_of(report) -> pd.DataFrame:
    with storage.open_file(report.rejects, "rb") as f:
        return pd.read_csv(f)


def test_lucas_2009_rules_and_rejects(gen: ModuleType, tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "LUCAS_TOPSOIL_v1.csv"), gen.LUCAS_2009)
    cfg = PointsIngestConfig(format="lucas2009", region_lonlat=GERMANY_SW)
    report = ingest_points(url, str(tmp_path / "points.parquet"), cfg)

    assert (report.rows, report.kept) == (7, 3)
    assert report.rejected == {
        "non-numeric value": 1,
        "duplicate id": 1,
        "lat/lon swapped?": 1,
        "out of region": 1,
    }
    rejects = rejects_of(report)
    assert rejects["source_row"].tolist() == [4, 5, 6, 7]
    assert rejects.loc[0, "detail"] == "OC='abc'" and rejects.loc[1, "detail"] == "first at row 1"
    df, epsg = read_points(report.output, ["soc_g_kg"])
    assert epsg == 3035
    assert df["id"].tolist() == ["LUCAS2009:44143104", "LUCAS2009:44143106", "LUCAS2009:44143108"]
    assert df["soc_g_kg"].tolist() == [23.4, 12.0, 3.0]  # "< 6" -> half the detection limit
    assert df["p_mg_kg"].tolist()[1] == 5.0  # "<10"
    x, y = Transformer.from_crs(4326, 3035, always_xy=True).transform(8.61, 48.41)
    assert df["x"][0] == pytest.approx(x) and df["y"][0] == pytest.approx(y)
    assert (df["depth_top_cm"] == 0).all() and (df["depth_bottom_cm"] == 20).all()
    assert set(df["source"]) == {"LUCAS2009"}


def test_lucas_2015_real_header(gen: ModuleType, root: str, caplog) -> None:
    url = gen.write_text(storage.join(root, "LUCAS_Topsoil_2015_20200323.csv"), "\ufeff" + gen.LUCAS_2015)
    cfg = PointsIngestConfig(format="lucas2015", region_lonlat=EUROPE)
    with caplog.at_level(logging.WARNING):
        report = ingest_points(url, storage.join(root, "points.parquet"), cfg)
    assert report.kept == 3 and report.rejected == {}
    assert report.missing_targets == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert report.targets["ph_h2o"] == "pH_H20" and report.targets["ec_ms_m"] == "EC"
    df, _ = read_points(report.output)
    assert df["ph_h2o"].tolist() == [6.4, 7.1, 7.1]  # the survey's "pH_H20" column (a zero, not an O)
    assert df["ph_cacl2"].tolist() == [5.8, 6.6, 6.6]
    assert df["ec_ms_m"].tolist() == [12.1, 20.0, 20.0] and df["caco3_g_kg"].tolist() == [1.0, 4.0, 4.0]
    assert df["soc_g_kg"].tolist()[:2] == [31.5, 18.2] and np.isnan(df["soc_g_kg"][2])  # "< LOD": no limit known
    assert np.isnan(df["p_mg_kg"][0])
    # Clay = Sand = Silt = 0 means "not analysed": missing, not 0 % texture
    assert report.all_zero_missing == 1
    assert df[["clay_pct", "sand_pct", "silt_pct"]].iloc[1].isna().all()
    assert df["clay_pct"][0] == 19.0 and df["silt_pct"][2] == 48.0
    assert (df["lon"][0], df["lat"][0]) == (8.595, 48.405)
    # no sampling date in the 2015 file: every row gets the preset's date, and the report says so
    assert set(df["date"].dt.strftime("%Y-%m-%d")) == {"2015-06-15"}
    assert "2015-06-15 for every row" in report.date_source and "no date column" in report.date_source
    assert report.rejects.startswith(root) and storage.exists(report.rejects)


def test_semicolons_and_decimal_commas_read_alike(gen: ModuleType, tmp_path) -> None:
    """The same survey file saved by a spreadsheet in a decimal-comma locale (';' separated)."""
    cfg = PointsIngestConfig(format="lucas2015")
    plain = gen.write_text(str(tmp_path / "a.csv"), gen.LUCAS_2015)
    local = gen.write_text(str(tmp_path / "b.csv"), gen.LUCAS_2015.replace(",", ";").replace(".", ","))
    a, _ = read_points(ingest_points(plain, str(tmp_path / "a.parquet"), cfg).output)
    b, _ = read_points(ingest_points(local, str(tmp_path / "b.parquet"), cfg).output)
    pd.testing.assert_frame_equal(a, b)


def test_absent_preset_targets_are_reported_and_logged(gen: ModuleType, tmp_path, caplog) -> None:
    table = pd.read_csv(io.StringIO(gen.LUCAS_2015), dtype=str, keep_default_na=False)
    url = gen.write_text(str(tmp_path / "lucas.csv"), table.drop(columns=["pH_H20", "EC"]).to_csv(index=False))
    with caplog.at_level(logging.WARNING):
        report = ingest_points(url, str(tmp_path / "p.parquet"), PointsIngestConfig(format="lucas2015"))
    assert report.missing_targets == ["ph_h2o", "ec_ms_m"]
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "ph_h2o" in warning[0] and "pH_H20" in warning[0] and "lucas.csv" in warning[0]
    df, _ = read_points(report.output)
    assert "ph_h2o" not in df.columns and df["ph_cacl2"].notna().all()


def test_lucas_2009_real_header_keeps_caco3_and_zero_texture_is_missing(gen: ModuleType, tmp_path) -> None:
    text = gen.LUCAS_2009.replace("44143106,5,18,40,42,", "44143106,5,0,0,0,")
    url = gen.write_text(str(tmp_path / "LUCAS_TOPSOIL_v1.csv"), text)
    report = ingest_points(url, str(tmp_path / "p.parquet"), PointsIngestConfig(format="lucas2009"))
    assert report.missing_targets == [] and report.all_zero_missing == 1
    assert report.targets["ph_cacl2"] == "pH_in_CaCl" and report.targets["caco3_g_kg"] == "CaCO3"
    df, _ = read_points(report.output)
    row = df.set_index("id").loc["LUCAS2009:44143106"]
    assert np.isnan(row["clay_pct"]) and np.isnan(row["sand_pct"]) and row["caco3_g_kg"] == 3.0
    assert "2009-06-15 for every row" in report.date_source


def test_lucas_2018_real_header_depths_and_duplicate_location(gen: ModuleType, tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "LUCAS-SOIL-2018.csv"), "\ufeff" + gen.LUCAS_2018)
    cfg = PointsIngestConfig(format="lucas2018", duplicates="reject_all")
    report = ingest_points(url, str(tmp_path / "points.parquet"), cfg)
    assert report.kept == 1 and report.rejected == {"duplicate location and date": 2}
    assert report.missing_targets == [] and report.date_source == "column SURVEY_DATE (%d-%m-%y)"
    df, _ = read_points(report.output)
    assert df["id"].tolist() == ["LUCAS2018:48362520"]
    assert df["date"][0].strftime("%Y-%m-%d") == "2018-06-22"
    assert (df["depth_top_cm"][0], df["depth_bottom_cm"][0]) == (0.0, 10.0)  # its Depth is "0-10 cm"
    assert (df["ec_ms_m"][0], df["caco3_g_kg"][0]) == (25.0, 12.0)
    assert report.depth_source.startswith("column Depth")


def test_unreadable_depth_rejects_its_row(gen: ModuleType, tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "l.csv"), gen.LUCAS_2018.replace("0-10 cm", "topsoil"))
    report = ingest_points(url, str(tmp_path / "p.parquet"), PointsIngestConfig(format="lucas2018"))
    assert report.rejected == {"bad depth": 1, "duplicate location and date": 1}
    assert rejects_of(report).loc[0, "detail"] == "Depth='topsoil'"


def test_below_detection_rules(gen: ModuleType, tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "l.csv"), gen.LUCAS_2009)
    limit = ingest_points(
        url, str(tmp_path / "a.parquet"), PointsIngestConfig(format="lucas2009", below_detection="limit")
    )
    df, _ = read_points(limit.output)
    assert df.set_index("id").loc["LUCAS2009:44143108", "soc_g_kg"] == 6.0
    reject = ingest_points(
        url, str(tmp_path / "b.parquet"), PointsIngestConfig(format="lucas2009", below_detection="reject")
    )
    assert reject.rejected["below detection limit"] == 2  # "<10" P and "< 6" OC rows


def test_swapped_coordinates_can_be_fixed_by_rule(gen: ModuleType, tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "l.csv"), gen.LUCAS_2009)
    cfg = PointsIngestConfig(format="lucas2009", region_lonlat=GERMANY_SW, swapped_lat_lon="fix", out_of_region="keep")
    report = ingest_points(url, str(tmp_path / "p.parquet"), cfg)
    assert report.kept == 5 and "lat/lon swapped?" not in report.rejected
    df, _ = read_points(report.output)
    fixed = df.set_index("id").loc["LUCAS2009:44143112"]
    assert (fixed["lon"], fixed["lat"]) == (8.59, 48.40)  # the file had GPS_LONG=48.40, GPS_LAT=8.59


def test_raca_sites_in_conus_albers(gen: ModuleType, tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "RaCA_sites.csv"), gen.RACA_SITES)
    report = ingest_points(url, str(tmp_path / "p.parquet"), PointsIngestConfig(format="raca", epsg=5070))
    assert report.kept == 2 and report.rejected == {"no target value": 1}
    df, epsg = read_points(report.output, ["soc_stock_t_ha"])
    assert epsg == 5070 and df["soc_stock_t_ha"].tolist() == [45.5, 39.9]
    assert (df["depth_bottom_cm"] == 30).all() and df["date"].dt.year.tolist() == [2010, 2011]


def test_generic_parquet_in_projected_crs(tmp_path) -> None:
    tr = Transformer.from_crs(4326, 32632, always_xy=True)
    e, n = tr.transform([8.5, 8.6, 8.7], [48.3, 48.4, 48.5])
    pd.DataFrame(
        {"sample": ["a", "b", "c"], "E": e, "N": n, "soc_pct": [2.0, 1.5, "x"], "when": ["2020-05-01"] * 3}
    ).astype({"soc_pct": str}).to_parquet(tmp_path / "samples.parquet")
    schema = PointSchema(
        source="field2020",
        id_columns=["sample"],
        x_columns=["E"],
        y_columns=["N"],
        epsg=32632,
        date_columns=["when"],
        depth_bottom_cm=30,
        targets={"soc_g_kg": TargetColumn(columns=["soc_pct"], factor=10.0)},  # % -> g/kg
    )
    cfg = PointsIngestConfig(format="generic", point_schema=schema)
    report = ingest_points(str(tmp_path / "samples.parquet"), str(tmp_path / "p.parquet"), cfg)
    assert report.kept == 2 and report.rejected == {"non-numeric value": 1}
    df, _ = read_points(report.output)
    assert df["soc_g_kg"].tolist() == [20.0, 15.0]
    np.testing.assert_allclose(df[["lon", "lat"]].to_numpy(), [[8.5, 48.3], [8.6, 48.4]])


def test_bad_files_name_the_file(gen: ModuleType, tmp_path) -> None:
    cfg = PointsIngestConfig(format="lucas2018")
    empty = gen.write_text(str(tmp_path / "empty.csv"), "")
    with pytest.raises(PointsInputError, match=r"empty.csv: empty file"):
        ingest_points(empty, str(tmp_path / "p.parquet"), cfg)
    header = gen.write_text(str(tmp_path / "header.csv"), gen.LUCAS_2018.splitlines()[0] + "\n")
    with pytest.raises(PointsInputError, match=r"header.csv: no data rows"):
        ingest_points(header, str(tmp_path / "p.parquet"), cfg)
    wrong = gen.write_text(str(tmp_path / "wrong.csv"), "a,b\n1,2\n")
    with pytest.raises(PointsInputError, match=r"wrong.csv: no sample id column \(looked for \['POINTID'"):
        ingest_points(wrong, str(tmp_path / "p.parquet"), cfg)
    with pytest.raises(ValueError, match="point_schema is required"):
        PointsIngestConfig(format="generic")
    assert not (tmp_path / "p.parquet").exists()
