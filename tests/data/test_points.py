"""Points table contract: Parquet round trip with CRS and class metadata, and errors naming row and column."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from soilnet.data.points import (
    CLASS_COLUMNS,
    TARGET_COLUMNS,
    CubeExistsError,
    PointsTableError,
    class_codes,
    class_vocabulary,
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


def test_class_columns_keep_their_vocabulary_and_codes(tmp_path: Path) -> None:
    url = str(tmp_path / "p.parquet")
    labelled = table().assign(
        permafrost=["yes", "no", None, "no", "yes"],
        taxonomy_order=["Gelisols", "Inceptisols", "Gelisols", None, "Histosols"],
    )
    write_points(labelled, url, 3035, classes={"taxonomy_order": ["Entisols", "Gelisols", "Histosols", "Inceptisols"]})
    df, _ = read_points(url, ["soc_g_kg"])
    assert CLASS_COLUMNS == {"permafrost": "binary", "taxonomy_order": "multiclass"}
    assert df["permafrost"].dtype == "string" and df["permafrost"].isna().tolist() == [False, False, True, False, False]
    vocab = class_vocabulary(df)
    assert vocab == {
        "permafrost": ["no", "yes"],
        "taxonomy_order": ["Entisols", "Gelisols", "Histosols", "Inceptisols"],
    }
    codes = class_codes(df["taxonomy_order"], vocab["taxonomy_order"])
    np.testing.assert_array_equal(codes, [1, 3, 1, np.nan, 2])
    with pytest.raises(PointsTableError, match="'permafrost' is NaN or infinite at row 2"):
        read_points(url, ["permafrost"])
    read_points(url, ["permafrost", "taxonomy_order"], allow_missing=True)


@pytest.mark.parametrize(
    ("edit", "classes", "message"),
    [
        (lambda d: d.assign(permafrost=[1, 0, 1, 0, 1]), None, "'permafrost' is int64, expected string labels"),
        (lambda d: d.assign(permafrost=list("abcab")), None, "binary class column 'permafrost' has 3 classes"),
        (
            lambda d: d.assign(taxonomy_order=["A", "B", "Z", "A", "B"]),
            {"taxonomy_order": ["A", "B"]},
            "label 'Z' at row 2, not in its vocabulary",
        ),
    ],
)
def test_class_errors_name_column_and_row(tmp_path: Path, edit, classes, message: str) -> None:
    with pytest.raises(PointsTableError, match=message):
        write_points(edit(table()), str(tmp_path / "p.parquet"), 3035, classes=classes)


def test_class_column_without_vocabulary_is_refused(tmp_path: Path) -> None:
    url = tmp_path / "p.parquet"
    write_points(table().assign(permafrost=list("nynyn")), str(url), 3035)
    arrow = pq.read_table(url)
    meta = {k: v for k, v in arrow.schema.metadata.items() if k != b"soilnet:classes"}
    pq.write_table(arrow.replace_schema_metadata(meta), url)
    with pytest.raises(PointsTableError, match="'permafrost' has no vocabulary"):
        read_points(url)


def test_missing_labels_allowed_per_target_but_not_all(tmp_path: Path) -> None:
    url = str(tmp_path / "p.parquet")
    write_points(table().assign(ph_h2o=[np.nan, 6.0, np.nan, 7.0, np.nan], n_g_kg=np.nan), url, 3035)
    df, _ = read_points(url, ["soc_g_kg", "ph_h2o"], allow_missing=True)
    assert int(df["ph_h2o"].notna().sum()) == 2
    with pytest.raises(PointsTableError, match="'n_g_kg' has no label at all"):
        read_points(url, ["soc_g_kg", "n_g_kg"], allow_missing=True)
