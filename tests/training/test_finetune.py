"""Fine-tuning folds: no test-fold row reaches training, validation or normalisation (checked on ids)."""

from __future__ import annotations

import numpy as np
import pytest

import soilnet.training.job as inputs_module
from soilnet.data.folds import FoldConfig
from soilnet.data.stream_config import StreamConfig
from soilnet.data.workspace import DataConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.finetune import run_cross_validation
from soilnet.training.samples import CachedSource


@pytest.mark.slow
def test_test_fold_ids_never_reach_training_or_normalisation(ray_local, tiny_demo, tiny_recipe, tmp_path, monkeypatch):
    seen: dict[str, list] = {"train": [], "norm": []}
    feed = CachedSource.feed
    fit = inputs_module.fit_normalisation

    def record_feed(self, table, epochs, world_size, stats, name):
        seen["train"].append((set(table["id"]), stats))
        return feed(self, table, epochs, world_size, stats, name)

    def record_fit(table, read, *args, **kwargs):
        seen["norm"].append(set(table["id"]))
        return fit(table, read, *args, **kwargs)

    monkeypatch.setattr(CachedSource, "feed", record_feed)
    monkeypatch.setattr(inputs_module, "fit_normalisation", record_fit)
    stream = StreamConfig(batch_size=16, read_batch_size=32, buffer_px=2, n_unlabelled=64, reader_concurrency=1)
    cfg = FinetuneConfig(recipe=tiny_recipe, epochs=1, folds=FoldConfig(k=3), only_folds=[1, 2], stream=stream)
    data = DataConfig(root=tiny_demo.root, runs=str(tmp_path / "runs"))
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    cv = run_cross_validation(data, TrainConfig(num_workers=1), cfg, tracking)

    labelled_ids = set(cv.table["id"])
    assert len(seen["norm"]) == 1 and not seen["norm"][0] & labelled_ids  # label-free input statistics
    assert len(seen["train"]) == 2
    for fold, (train_ids, stats) in zip([1, 2], seen["train"], strict=True):
        test_ids = set(cv.table.loc[cv.table["fold"] == fold, "id"])
        assert train_ids and not train_ids & test_ids
        train_targets = cv.table.set_index("id").loc[sorted(train_ids), "target"]
        assert stats.target_mean == pytest.approx(train_targets.mean(), rel=1e-5)
    scored = np.isfinite(cv.predictions)
    assert set(cv.table.loc[scored, "fold"]) == {1, 2}
    assert list(cv.per_fold["fold"]) == [1, 2]


def test_freezing_without_pretrained_weights_is_rejected():
    with pytest.raises(ValueError, match=r"freeze_backbone needs finetune\.pretrained"):
        FinetuneConfig(freeze_backbone=True)
