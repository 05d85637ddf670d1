"""Wide spectral tables: column names, inference, refused columns, gap rows, repeats, CSV into the library."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from soilnet.spectra.ingest import ingest_table, parse_table, spectral_columns
from soilnet.spectra.library import SpectralLibraryError, read_spectra


def wide(prefix: str, axis: list[float], suffix: str = "", rows: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"id": [f"s{i}" for i in range(rows)], "soc_g_kg": rng.uniform(5, 50, rows)})
    for value in axis:
        table[f"{prefix}{value:g}{suffix}"] = rng.uniform(0.2, 0.8, rows)
    return table


@pytest.mark.parametrize(
    ("names", "prefix", "axis", "suffix"),
    [
        (["wn_4000.0", "wn_3998.0", "wn_3996.0"], "wn_", [3996.0, 3998.0, 4000.0], ""),
        (["wl_350", "wl_351", "id"], "wl_", [350.0, 351.0], ""),
        (["scan_mir.602_abs", "scan_mir.600_abs", "soc"], "scan_mir.", [600.0, 602.0], "_abs"),
    ],
)
def test_column_names_give_axis_prefix_and_suffix(names, prefix, axis, suffix) -> None:
    cols = spectral_columns(names)
    assert (cols.prefix, cols.axis.tolist(), cols.suffix) == (prefix, axis, suffix)
    assert [float(n[len(prefix) :].removesuffix(suffix)) for n in cols.names] == axis


def test_bad_names_are_refused_naming_the_column() -> None:
    with pytest.raises(SpectralLibraryError, match="'wn_total' has the spectral prefix"):
        spectral_columns(["wn_600", "wn_602", "wn_total"], prefix="wn_")
    with pytest.raises(SpectralLibraryError, match=re.escape("'wn_600' and 'wn_600.0' name the same axis value 600")):
        spectral_columns(["wn_600", "wn_600.0", "wn_602"])
    with pytest.raises(SpectralLibraryError, match="mix the suffixes"):
        spectral_columns(["m.600_abs", "m.602_ref"])


def test_inference_from_names_and_ranges() -> None:
    mir, report = parse_table(wide("scan_mir.", [600, 602, 604], "_abs"), "t.csv")
    assert (mir.unit, mir.fidelity, mir.quantity) == ("cm-1", "MIR", "absorbance")
    assert report.other_columns == ["soc_g_kg"]
    visnir, _ = parse_table(wide("x", [350, 352, 354]), "t.csv")
    assert (visnir.unit, visnir.fidelity, visnir.quantity) == ("nm", "visNIR", "reflectance")
    nir, _ = parse_table(wide("wl_", [1350, 1352]), "t.csv", quantity="absorbance")
    assert (nir.fidelity, nir.quantity) == ("NIR", "absorbance")


def test_text_in_a_spectral_column_is_refused_naming_column_row_and_value() -> None:
    table = wide("wn_", [600, 602, 604])
    table["wn_602"] = table["wn_602"].astype(object)
    table.loc[1, "wn_602"] = "0.3a"
    with pytest.raises(SpectralLibraryError, match=re.escape("column 'wn_602' is not numeric: row 1 holds '0.3a'")):
        parse_table(table, "t.csv")


def test_gap_rows_are_reported_and_left_out_never_silently() -> None:
    table = wide("wn_", [600, 602, 604], rows=4)
    table.loc[1, "wn_602"] = np.nan
    table.loc[3, "wn_600"] = np.inf
    spectra, report = parse_table(table, "t.csv")
    assert spectra.ids.tolist() == ["s0", "s2"]
    assert report.n_gap_rows == 2
    assert [(g.row, g.id, g.columns) for g in report.gaps] == [(1, "s1", ["wn_602"]), (3, "s3", ["wn_600"])]


def test_repeated_ids_are_scan_repeats_or_come_from_a_column() -> None:
    table = wide("wn_", [600, 602], rows=3)
    table["id"] = ["a", "b", "a"]
    spectra, _ = parse_table(table, "t.csv")
    assert spectra.repeats.tolist() == [0, 0, 1]
    table["rep"] = [2, 0, 5]
    spectra, _ = parse_table(table, "t.csv", repeat_column="rep")
    assert spectra.repeats.tolist() == [2, 0, 5]
    table["rep"] = [0, 0, 1]
    table["id"] = ["a", "a", "b"]
    with pytest.raises(SpectralLibraryError, match="'a' has scan repeat 0 more than once"):
        parse_table(table, "t.csv", repeat_column="rep")


def test_csv_on_s3_into_an_s3_library(s3_bucket: str) -> None:
    from soilnet import storage

    table = wide("scan_nir.", [1352, 1350, 1354], "_ref", rows=5)
    url = f"{s3_bucket}/in/nir.csv"
    with storage.open_file(url, "w") as handle:
        table.to_csv(handle, index=False)
    report = ingest_table(url, f"{s3_bucket}/lib")
    stored = read_spectra(f"{s3_bucket}/lib", "NIR")
    assert report.n_scans == 5 and stored.axis.tolist() == [1350.0, 1352.0, 1354.0]
    assert stored.values[:, 0] == pytest.approx(table["scan_nir.1350_ref"].to_numpy(), rel=1e-6)
