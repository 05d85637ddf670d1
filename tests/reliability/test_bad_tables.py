"""Random and hostile soil-sample files: only `PointsInputError` or rejected rows with reasons (hypothesis)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from soilnet.data.ingest.config import PointSchema, PointsIngestConfig, TargetColumn
from soilnet.data.ingest.points import ingest_points
from soilnet.data.ingest.tables import PointsInputError, read_table
from soilnet.data.points import read_points

pytestmark = pytest.mark.filterwarnings("ignore:Could not infer format:UserWarning")
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOM = b"\xef\xbb\xbf"
SCHEMA = PointSchema(
    source="fuzz",
    id_columns=["id"],
    x_columns=["lon"],
    y_columns=["lat"],
    date_columns=["date"],
    default_date=dt.date(2020, 6, 1),
    targets={"soc_g_kg": TargetColumn(columns=["soc"]), "ph_h2o": TargetColumn(columns=["ph"])},
)
CFG = PointsIngestConfig(format="generic", point_schema=SCHEMA, region_lonlat=(5.0, 45.0, 15.0, 55.0))

#: Cells a survey file really holds: numbers with decimal commas, detection limits, blanks, junk (no exponents).
cells = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6).map(repr),
    st.just("nan"),
    st.floats(min_value=0, max_value=300).map(lambda v: f"{v:.2f}".replace(".", ",")),
    st.sampled_from(["", "NA", "n.d.", "<LOD", "< 6", "<0,5", "-", "#N/A", "2020-13-45", "31-12-19", "  7 "]),
    st.text(alphabet="0123456789,.;<>-+ /LODabc\"'\t", max_size=8),
)
rows = st.lists(st.tuples(st.text("abc123", max_size=4), cells, cells, cells, cells, cells), min_size=1, max_size=15)


def _write(folder: str, name: str, payload: bytes) -> str:
    path = Path(folder) / name
    path.write_bytes(payload)
    return str(path)


@FUZZ
@given(st.sampled_from([b"", BOM]), st.binary(max_size=300))
def test_random_bytes_are_read_or_refused_with_the_file_named(prefix, body):
    payload = prefix + body
    assume(payload != BOM)  # the bare BOM is test_a_bare_bom_is_refused below
    with tempfile.TemporaryDirectory() as folder:
        url = _write(folder, "samples.csv", payload)
        try:
            df = read_table(url)
        except PointsInputError as exc:
            assert url in str(exc)
        else:
            assert len(df) >= 1 and all(isinstance(c, str) for c in df.columns)


@settings(FUZZ, max_examples=25)
@given(st.sampled_from([",", ";", "\t"]), st.booleans(), rows)
def test_random_survey_rows_end_in_the_table_or_the_rejects(delimiter, bom, data):
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["id", "lon", "lat", "date", "soc", "ph"])
    writer.writerows(data)
    with tempfile.TemporaryDirectory() as folder:
        url = _write(folder, "samples.csv", (BOM if bom else b"") + text.getvalue().encode())
        out = str(Path(folder) / "points.parquet")
        try:
            report = ingest_points(url, out, CFG)
        except PointsInputError as exc:
            assert url in str(exc)
            return
        assert report.kept + sum(report.rejected.values()) == report.rows == len(data)
        rejects = pd.read_csv(report.rejects, dtype=str, keep_default_na=False)
        assert (rejects["reason"] != "").all() and len(rejects) == sum(report.rejected.values())
        table, _ = read_points(out)
        assert len(table) == report.kept
        for target in ("soc_g_kg", "ph_h2o"):
            values = table[target].to_numpy(dtype=np.float64)
            assert not np.isinf(values).any() and (np.nan_to_num(values) >= 0).all()


def test_points_outside_the_region_or_without_targets_are_rejected_with_reasons(tmp_path):
    csv_text = "id;lon;lat;date;soc;ph\n1;10;50;2020-05-01;12,5;6.1\n2;100;50;2020-05-01;3;6\n3;10;50.1;2020-05-01;;\n"
    csv_text += "4;10;50.2;2020-05-01;NaN;nan\n5;10;95;2020-05-01;4;6\n6;10;50.3;yesterday;4;6\n"
    url = _write(str(tmp_path), "s.csv", csv_text.encode())
    report = ingest_points(url, str(tmp_path / "p.parquet"), CFG)
    assert report.kept == 1
    rejects = pd.read_csv(report.rejects, dtype=str).set_index("source_row")["reason"].to_dict()
    assert rejects == {
        "2": "out of region",
        "3": "no target value",
        "4": "no target value",
        "5": "coordinates out of range",
        "6": "bad date",
    }


def test_a_bare_bom_is_refused(tmp_path):
    url = _write(str(tmp_path), "bom.csv", BOM)
    with pytest.raises(PointsInputError, match=r"bom\.csv"):
        read_table(url)


def test_infinite_targets_are_rejected_rows(tmp_path):
    csv_text = "id,lon,lat,date,soc,ph\n1,10,50,2020-05-01,inf,6\n2,10,50.1,2020-05-01,1e400,6\n"
    csv_text += "3,10,50.2,2020-05-01,Infinity,\n4,10,50.3,2020-05-01,5,6\n"
    url = _write(str(tmp_path), "s.csv", csv_text.encode())
    report = ingest_points(url, str(tmp_path / "p.parquet"), CFG)
    assert report.kept == 1 and report.rejected == {"non-numeric value": 3}
    read_points(str(tmp_path / "p.parquet"), ["soc_g_kg"])
