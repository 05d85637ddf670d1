"""Targets and outputs (C1): kinds, depth names, head layout, and the multi-output location table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.folds import FoldConfig
from soilnet.data.locations import has_labels, label_matrix, labelled_outputs, location_columns, shallowest_rows
from soilnet.data.targets import TargetSpec, head_slices, head_width, plan_outputs

VOCAB = {"permafrost": ["no", "yes"], "taxonomy_order": ["A", "B", "C"]}


def test_outputs_follow_targets_then_depths_with_their_head_columns() -> None:
    outputs = plan_outputs(
        ["soc_g_kg", TargetSpec(name="taxonomy_order", weight=2.0)], [(0.0, 20.0), (20.0, 50.0)], VOCAB
    )
    assert [o.name for o in outputs] == [
        "soc_g_kg_0_20cm", "soc_g_kg_20_50cm", "taxonomy_order_0_20cm", "taxonomy_order_20_50cm"
    ]  # fmt: skip
    assert [o.kind for o in outputs] == ["continuous", "continuous", "multiclass", "multiclass"]
    assert outputs[2].weight == 2.0 and outputs[2].classes == ("A", "B", "C")
    assert head_slices(outputs) == [slice(0, 1), slice(1, 2), slice(2, 5), slice(5, 8)] and head_width(outputs) == 8
    one = plan_outputs(["permafrost"], [(0.0, 20.0)], VOCAB)
    assert [(o.name, o.kind, o.width, o.depth) for o in one] == [("permafrost", "binary", 2, (0.0, 20.0))]


@pytest.mark.parametrize(
    ("targets", "vocab", "message"),
    [
        (["permafrost"], {}, "'permafrost' is binary but the points table records no class vocabulary"),
        (["permafrost"], {"permafrost": ["x", "y", "z"]}, "binary target 'permafrost' needs exactly 2 classes"),
        (["soc_g_kg", "soc_g_kg"], {}, "lists a column twice"),
        ([TargetSpec(name="soc_g_kg", kind="multiclass")], {}, "'soc_g_kg' is multiclass"),
    ],
)
def test_plan_errors_name_the_target(targets, vocab, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_outputs(targets, None, vocab)


def _points() -> pd.DataFrame:
    """Three sites; site a at two depths, site b topsoil only, site c with no label at all."""
    return pd.DataFrame(
        {
            "id": ["a", "a-sub", "b", "c"],
            "x": [1.0, 1.0, 2.0, 3.0],
            "y": [5.0, 5.0, 6.0, 7.0],
            "date": pd.to_datetime(["2018-05-01"] * 4),
            "depth_top_cm": [0.0, 20.0, 0.0, 0.0],
            "depth_bottom_cm": [20.0, 50.0, 20.0, 20.0],
            "source": ["demo", "demo", "demo+spectra:m", "demo"],
            "soc_g_kg": [10.0, 4.0, np.nan, np.nan],
            "taxonomy_order": pd.array(["C", pd.NA, "A", pd.NA], dtype="string"),
        }
    )


def test_multi_output_table_has_one_row_per_site_and_nan_where_unlabelled() -> None:
    outputs = plan_outputs(["soc_g_kg", "taxonomy_order"], [(0.0, 20.0), (20.0, 50.0)], VOCAB)
    assert [has_labels(_points(), o) for o in outputs] == [True, True, True, False]
    with pytest.raises(ValueError, match="'taxonomy_order_20_50cm' has no label in the points table"):
        labelled_outputs(_points(), outputs, FoldConfig(k=2))
    table = labelled_outputs(_points(), outputs[:3], FoldConfig(k=2), spectral_weight=0.5)
    assert table["id"].tolist() == ["a", "b"]  # c has no label: left out
    labels = label_matrix(table)
    expected = [[10.0, 4.0, 2.0], [np.nan, np.nan, 0.0]]
    np.testing.assert_array_equal(labels, np.asarray(expected, dtype=np.float32))
    assert table["weight"].tolist() == [1.0, 0.5]
    assert location_columns(table) == ["id", "x", "y", "date", "target", "fold", "target_1", "target_2", "weight"]


def test_shallowest_interval_is_chosen_without_depths() -> None:
    assert shallowest_rows(_points())["id"].tolist() == ["a", "b", "c"]
