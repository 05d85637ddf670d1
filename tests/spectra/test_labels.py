"""Spectral labels in training: marked rows get the configured loss weight, lab rows 1, padding 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soilnet.data.folds import FoldConfig
from soilnet.data.locations import labelled_locations
from soilnet.data.points import is_spectral_label
from soilnet.data.stream import epoch_table
from soilnet.data.stream_config import StreamConfig
from soilnet.spectra.labels import spectral_source
from soilnet.training.config import FinetuneConfig


def points(n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sources = ["lucas"] * n
    sources[1] = spectral_source("lucas", "plsr")
    sources[4] = spectral_source("raca", "ossl_cubist")
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "x": rng.uniform(0, 1e4, n),
            "y": rng.uniform(0, 1e4, n),
            "date": pd.Timestamp("2020-01-01"),
            "source": sources,
            "soc_g_kg": rng.uniform(5, 50, n),
        }
    )


def test_spectral_labels_are_marked_in_source() -> None:
    table = points()
    assert table.loc[1, "source"] == "lucas+spectra:plsr"
    assert np.flatnonzero(is_spectral_label(table["source"])).tolist() == [1, 4]


def test_training_weighs_spectral_labels_below_lab_values_and_padding_not_at_all() -> None:
    weight = FinetuneConfig().spectral_label_weight
    assert 0 < weight < 1
    locations = labelled_locations(points(), "soc_g_kg", FoldConfig(k=2), spectral_weight=weight)
    assert locations["weight"].tolist() == pytest.approx([1, weight, 1, 1, weight, 1, 1, 1])
    table = epoch_table(locations, StreamConfig(batch_size=3, shuffle="global"), [0], 2, None)
    assert len(table) == 12 and "weight" not in table.columns
    by_id = table.iloc[:8].set_index("id")["valid"]  # the first 8 rows are the real ones, 4 are padding
    assert by_id[["p1", "p4"]].tolist() == pytest.approx([weight, weight])
    assert by_id.drop(["p1", "p4"]).tolist() == pytest.approx([1.0] * 6)
    assert table["valid"].iloc[8:].tolist() == [0.0] * 4
