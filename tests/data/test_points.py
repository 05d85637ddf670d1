"""Points table contract: Parquet round trip with CRS metadata, and errors naming row and column."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soilnet.data.points import (
    TARGET_COLUMNS,
    CubeExistsError,
    PointsTableError,
    read_points,
    target_columns,
    write_points,
)


def table(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "lon": np.linspace(8, 9, n),
            "lat": np.linspace(50, 51, n),
            "x": np.linspace(4.2e6, 4.3e6, n),
            "y": np.linspace(3.0e6, 3.1e6, n),
            "date": pd.date_range("2018-03-01", periods=n, freq="D"),
            "depth_top_cm": 0.0,
            "depth_bottom_cm": 20.0,
            "source": "LUCAS2018",
            "soc_g_kg": np.linspace(5, 50, n),
        }
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_round_trip(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3_bucket")
    url = f"{root}/points.parquet"
    write_points(table(), url, 3035)
    df, epsg = read_points(url, ["soc_g_kg"])
    assert epsg == 3035 and len(df) == 5
    pd.testing.assert_series_equal(df["soc_g_kg"], table()["soc_g_kg"])
    with pytest.raises(CubeExistsError):
        write_points(table(), url, 3035)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.drop(columns=["x"]), r"\['x'\] missing"),
        (lambda d: d.assign(id=["a", "b", "a", "c", "d"]), "id 'a' at row 2 is duplicated"),
        (lambda d: d.assign(lat=[50, 51, 95, 50, 50]), "row 2"),
        (lambda d: d.assign(y=[1.0, np.nan, 1, 1, 1]), "'y' is not finite at row 1"),
        (lambda d: d.assign(soc_g_kg=["1", "2", "x", "4", "5"]), "'soc_g_kg' is .*expected numeric"),
    ],
)
def test_errors_name_column_and_row(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(PointsTableError, match=message):
        write_points(edit(table()), str(tmp_path / "p.parquet"), 3035)


def test_nan_target_is_named_when_required(tmp_path: Path) -> None:
    url = str(tmp_path / "p.parquet")
    write_points(table().assign(soc_g_kg=[1.0, 2.0, np.nan, 4.0, 5.0]), url, 3035)
    with pytest.raises(PointsTableError, match="'soc_g_kg' is NaN or infinite at row 2"):
        read_points(url, ["soc_g_kg"])
    with pytest.raises(PointsTableError, match="target column 'ph_h2o' missing"):
        read_points(url, ["ph_h2o"])


def test_not_parquet_and_no_crs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(PointsTableError, match="not a readable Parquet"):
        read_points(bad)
    plain = tmp_path / "plain.parquet"
    table().to_parquet(plain)
    with pytest.raises(PointsTableError, match="no CRS"):
        read_points(plain)


def test_ec_and_caco3_are_target_columns_with_units(tmp_path: Path) -> None:
    assert TARGET_COLUMNS["ec_ms_m"] == "mS/m" and TARGET_COLUMNS["caco3_g_kg"] == "g/kg"
    url = str(tmp_path / "p.parquet")
    write_points(table().assign(ec_ms_m=np.linspace(5, 25, 5), caco3_g_kg=[0.0, 1.0, np.nan, 3.0, 4.0]), url, 3035)
    df, _ = read_points(url, ["ec_ms_m"])
    assert target_columns(df) == ["soc_g_kg", "ec_ms_m", "caco3_g_kg"]
    assert np.isnan(df["caco3_g_kg"][2])  # a missing value is NaN
