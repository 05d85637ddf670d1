"""The spectral library store: Parquet round trips (local and S3 on moto), append rules, join with points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.zarr_group import CubeExistsError
from soilnet.spectra.library import (
    SpectralLibraryError,
    SpectralSet,
    join_points,
    library_fidelities,
    read_spectra,
    write_spectra,
)


def make_set(ids: list[str], repeats: list[int], seed: int = 0, fidelity: str = "MIR") -> SpectralSet:
    rng = np.random.default_rng(seed)
    axis = np.array([600.0, 602.0, 604.0, 606.0])
    values = rng.normal(size=(len(ids), axis.size)).astype(np.float32)
    return SpectralSet(np.array(ids), np.array(repeats), values, axis, "cm-1", fidelity, "absorbance")


def assert_same(a: SpectralSet, b: SpectralSet) -> None:
    assert a.ids.tolist() == b.ids.tolist()
    assert a.repeats.tolist() == b.repeats.tolist()
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(a.axis, b.axis)
    assert (a.unit, a.fidelity, a.quantity) == (b.unit, b.fidelity, b.quantity)


def test_local_round_trip_keeps_ids_repeats_axis_and_metadata(tmp_path) -> None:
    spectra = make_set(["a", "a", "b"], [0, 1, 0])
    written = write_spectra(spectra, str(tmp_path / "lib"))
    assert written.endswith("mir.parquet")
    assert_same(read_spectra(str(tmp_path / "lib"), "MIR"), spectra)
    assert library_fidelities(str(tmp_path / "lib")) == ["MIR"]


def test_s3_round_trip_on_moto(s3_bucket: str) -> None:
    library = f"{s3_bucket}/spectra"
    mir, nir = make_set(["a", "b"], [0, 0]), make_set(["a"], [0], seed=1, fidelity="NIR")
    write_spectra(mir, library)
    write_spectra(nir, library)
    assert_same(read_spectra(library, "MIR"), mir)
    assert_same(read_spectra(library, "NIR"), nir)
    assert library_fidelities(library) == ["MIR", "NIR"]


def test_existing_file_needs_overwrite_or_append_and_append_checks_axis(tmp_path) -> None:
    library = str(tmp_path)
    write_spectra(make_set(["a"], [0]), library)
    with pytest.raises(CubeExistsError, match="--overwrite or --append"):
        write_spectra(make_set(["b"], [0]), library)
    write_spectra(make_set(["b"], [0], seed=2), library, append=True)
    assert read_spectra(library, "MIR").ids.tolist() == ["a", "b"]
    with pytest.raises(SpectralLibraryError, match="'a' has scan repeat 0 more than once"):
        write_spectra(make_set(["a"], [0]), library, append=True)
    other = make_set(["c"], [0])
    shifted = SpectralSet(other.ids, other.repeats, other.values, other.axis + 1, "cm-1", "MIR", "absorbance")
    with pytest.raises(SpectralLibraryError, match="cannot append"):
        write_spectra(shifted, library, append=True)


def test_set_validation_names_the_problem() -> None:
    with pytest.raises(SpectralLibraryError, match="strictly ascending"):
        SpectralSet(
            np.array(["a"]), np.array([0]), np.ones((1, 3)), np.array([3.0, 2.0, 1.0]), "nm", "NIR", "reflectance"
        )
    with pytest.raises(SpectralLibraryError, match="unit 'um'"):
        SpectralSet(np.array(["a"]), np.array([0]), np.ones((1, 2)), np.array([1.0, 2.0]), "um", "NIR", "reflectance")


def test_views_pair_repeats_and_means_average_them() -> None:
    spectra = make_set(["a", "b", "a", "a"], [0, 0, 1, 2])
    views, counts = spectra.views()
    assert counts.tolist() == [3, 1]
    assert np.array_equal(views[0, 1], spectra.values[2])
    assert np.array_equal(views[1, 2], spectra.values[1])  # a short sample is padded with its first scan
    ids, means = spectra.mean_by_sample()
    assert ids.tolist() == ["a", "b"]
    assert means[0] == pytest.approx(spectra.values[[0, 2, 3]].mean(axis=0), rel=1e-6)


def test_join_points_by_id_keeps_lab_only_and_spectra_only_rows() -> None:
    points = pd.DataFrame({"id": ["a", "c"], "soc_g_kg": [12.0, 30.0]})
    spectra = make_set(["a", "a", "b"], [0, 1, 0])
    joined = join_points(points, spectra, "mir_").set_index("id")
    assert sorted(joined.index) == ["a", "b", "c"]
    assert joined.loc["a", "mir_600"] == pytest.approx(spectra.values[:2, 0].mean())
    assert np.isnan(joined.loc["c", "mir_600"])  # lab values only
    assert np.isnan(joined.loc["b", "soc_g_kg"])  # spectra only
    inner = join_points(points, spectra, "mir_", how="inner")
    assert inner["id"].tolist() == ["a"]
