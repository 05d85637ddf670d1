"""The best K epochs' weights of a model: ranking, index, dropped files, reading the best back."""

from __future__ import annotations

import json

import pytest
import torch

from soilnet.training.best import INDEX_FILE, keep_if_best, read_best
from soilnet.training.state import Progress


def _epoch(module: torch.nn.Module, progress: Progress, epoch: int, score: float, folder: str) -> bool:
    progress.epoch = epoch
    with torch.no_grad():
        module.weight.fill_(float(epoch))
    return keep_if_best(module, progress, score, 2, folder, "fold_0")


def test_the_best_two_epochs_are_kept_and_the_best_is_read_back(tmp_path):
    module, progress, folder = torch.nn.Linear(2, 1), Progress(), str(tmp_path / "best")
    kept = [_epoch(module, progress, e, s, folder) for e, s in [(1, 0.9), (2, 0.5), (3, 0.7), (4, 0.8), (5, 0.6)]]

    assert kept == [True, True, True, False, True]
    assert progress.top == [[0.5, 2], [0.6, 5]]
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [
        "epoch_0002.safetensors",
        "epoch_0005.safetensors",
        INDEX_FILE,
    ]
    state, entry = read_best(folder)
    assert entry == {"epoch": 2, "score": 0.5, "weights": "epoch_0002.safetensors"}
    assert torch.equal(state["weight"], torch.full((1, 2), 2.0))


def test_a_rerun_epoch_replaces_its_own_entry(tmp_path):
    module, progress, folder = torch.nn.Linear(2, 1), Progress(), str(tmp_path / "best")
    _epoch(module, progress, 1, 0.9, folder)
    _epoch(module, progress, 2, 0.4, folder)
    _epoch(module, progress, 2, 0.45, folder)  # epoch 2 again after a restart
    index = json.loads((tmp_path / "best" / INDEX_FILE).read_text())
    assert [(e["epoch"], e["score"]) for e in index["epochs"]] == [(2, 0.45), (1, 0.9)]


def test_reading_a_model_that_never_finished_an_epoch_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing.*index\.json"):
        read_best(str(tmp_path / "nothing"))
