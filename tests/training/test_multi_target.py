"""Several targets (C1): class weights, masked loss, per-fold scaling, and a multi-target fine-tune with gaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from soilnet.data.folds import FoldConfig
from soilnet.data.normalisation import NormStats
from soilnet.data.stream_config import StreamConfig
from soilnet.data.targets import TargetOutput
from soilnet.data.workspace import DataConfig
from soilnet.recipes.bundle import load_bundle
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import FinetuneConfig, TrainConfig
from soilnet.training.loop import _to_device
from soilnet.training.multi_target import (
    MultiTargetTask,
    balanced_class_weights,
    head_scaling,
    output_stats,
)

OUTPUTS = [
    TargetOutput("soc_g_kg", "soc_g_kg", "continuous", weight=1.0),
    TargetOutput("taxonomy_order", "taxonomy_order", "multiclass", weight=2.0, classes=("A", "B", "C")),
]


def _stats() -> NormStats:
    return NormStats(
        image_method="minmax", bands=["b"], image_center=[0.0], image_scale=[1.0], variables=["v"],
        climate_mean=[0.0], climate_std=[1.0], target_mean=0.0, target_std=1.0, n_rows=1,
    )  # fmt: skip


def test_balanced_weights_are_scikit_learns_and_absent_classes_weigh_nothing() -> None:
    codes = np.array([0, 0, 0, 1, 2, 2, np.nan])
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=codes[:-1].astype(int))
    np.testing.assert_allclose(balanced_class_weights(codes, 3), expected)
    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 2]), 3), [0.75, 0.0, 1.5])  # 3 / (2 * n_c)


def test_fold_scaling_uses_labelled_training_rows_only() -> None:
    labels = np.array([[10.0, 0], [20.0, 1], [np.nan, 1], [30.0, np.nan]])
    stats = output_stats(_stats(), labels, OUTPUTS)
    assert stats.target_mean == [20.0, 0.0] and stats.target_std == pytest.approx([np.std([10, 20, 30]), 1.0])
    assert stats.class_weights == pytest.approx([3 / (2 * 1), 3 / (2 * 2), 0.0])  # codes 0, 1, 1: n 3, 2 present
    assert "class_weights" not in _stats().model_dump_json()  # one-target statistics files stay as they were
    assert NormStats.model_validate_json(stats.model_dump_json()) == stats
    assert head_scaling(stats, OUTPUTS) == ([20.0, 0.0, 0.0, 0.0], [pytest.approx(8.1649658), 1.0, 1.0, 1.0])
    batch = _to_device({"image": torch.zeros(4, 1, 2, 2), "target": torch.tensor(labels, dtype=torch.float32)},
                       torch.device("cpu"), stats)  # fmt: skip
    np.testing.assert_allclose(batch["target"][:, 0].numpy(), [-1.2247449, 0.0, np.nan, 1.2247449], rtol=1e-6)
    assert torch.isnan(batch["target"][3, 1]) and batch["class_weights"].tolist() == [1.5, 0.75, 0.0]


def test_masked_loss_and_class_weighted_cross_entropy_hand_worked(recipe) -> None:
    task = MultiTargetTask(recipe("soilnet-tiny"), OUTPUTS, "mse", 1.0, None, False)
    assert task.recipe.model.head.n_targets == 4
    # three rows: soc column, then three logits
    prediction = torch.tensor([[1.0, 2.0, 0.0, 0.0], [0.5, 0.0, 1.0, 0.0], [3.0, 0.0, 0.0, 1.0]])
    target = torch.tensor([[0.0, 0.0], [np.nan, 1.0], [1.0, np.nan]])  # standardised soc, class codes
    weights = torch.tensor([0.5, 2.0, 1.0])
    batch = {"target": target, "valid": torch.ones(3), "class_weights": weights}
    loss = task.supervised_loss({"prediction": prediction}, batch)
    # soc: rows 0 and 2 labelled: ((1 - 0)^2 + (3 - 1)^2) / 2 = 2.5
    # classes: rows 0 (code 0, weight 0.5) and 1 (code 1, weight 2); CE_0 = log(e^2 + 2) - 2, CE_1 = log(e + 2) - 1
    ce0, ce1 = np.log(np.e**2 + 2) - 2, np.log(np.e + 2) - 1
    hand = 2.5 + 2.0 * (0.5 * ce0 + 2.0 * ce1) / (0.5 + 2.0)
    assert loss.item() == pytest.approx(hand, rel=1e-6)
    torch_ce = F.cross_entropy(prediction[:2, 1:], torch.tensor([0, 1]), weight=weights)
    assert loss.item() == pytest.approx(2.5 + 2.0 * torch_ce.item(), rel=1e-6)
    # padding rows (valid 0) weigh nothing; per-sample losses (validation) skip missing labels
    padded = task.supervised_loss({"prediction": prediction}, {**batch, "valid": torch.tensor([1.0, 1.0, 0.0])})
    assert padded.item() == pytest.approx(1.0 + 2.0 * (0.5 * ce0 + 2.0 * ce1) / 2.5, rel=1e-6)
    per_sample = task.sample_losses({"prediction": prediction}, batch)
    np.testing.assert_allclose(per_sample.numpy(), [1.0 + 2 * 0.5 * ce0, 2 * 2.0 * ce1, 4.0], rtol=1e-6)


@pytest.fixture(scope="module")
def layered_demo(tmp_path_factory: pytest.TempPathFactory):
    """A tiny demo region with a 20-50 cm row under every point (class columns only on the topsoil rows)."""
    from soilnet.data.demo_region import DemoConfig, generate_demo_region
    from soilnet.data.raster_cube import RasterLayout

    cfg = DemoConfig(width_km=6, height_km=6, n_points=120, seed=3, subsoil_cm=(20.0, 50.0))
    root = tmp_path_factory.mktemp("layered_demo")
    return generate_demo_region(cfg, str(root), RasterLayout(inner_chunk=32, shard=128))


@pytest.mark.slow
def test_multi_target_finetune_with_missing_labels(ray_local, layered_demo, tiny_recipe, tmp_path) -> None:
    from soilnet.training.finetune import run_cross_validation

    stream = StreamConfig(batch_size=16, read_batch_size=64, buffer_px=2, n_unlabelled=64, reader_concurrency=1)
    cfg = FinetuneConfig(
        recipe=tiny_recipe,
        targets=["soc_g_kg", "ph_h2o", {"name": "permafrost", "weight": 2.0}, "taxonomy_order"],
        depths=[[0, 20], [20, 50]],
        epochs=2,
        folds=FoldConfig(k=3),
        only_folds=[0],
        stream=stream,
    )
    data = DataConfig(root=layered_demo.root, runs=str(tmp_path / "runs"))
    cv = run_cross_validation(data, TrainConfig(num_workers=1), cfg, TrackingConfig(uri=f"sqlite:///{tmp_path}/m.db"))

    names = ["soc_g_kg_0_20cm", "soc_g_kg_20_50cm", "ph_h2o_0_20cm", "ph_h2o_20_50cm", "permafrost_0_20cm",
             "taxonomy_order_0_20cm"]  # fmt: skip
    assert [o.name for o in cv.outputs] == names  # the class columns have no 20-50 cm labels: not trained
    assert len(cv.table) == 120 and cfg.target == "soc_g_kg"
    test = (cv.table["fold"] == 0).to_numpy()
    assert np.isfinite(cv.oof["ph_h2o_20_50cm"][test]).all() and np.isnan(cv.oof["ph_h2o_20_50cm"][~test]).all()
    probabilities = cv.oof["taxonomy_order_0_20cm"][test]
    assert probabilities.shape == (test.sum(), 4) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert set(cv.per_fold["target"]) == set(names)
    assert {"rmse", "macro_f1"} <= set(cv.summary["metric"])
    bundle = load_bundle(cv.bundle)
    assert bundle.meta.targets == names and bundle.meta.kinds[-2:] == ["binary", "multiclass"]
    assert bundle.meta.classes["permafrost_0_20cm"] == ["no", "yes"] and bundle.meta.units[:2] == ["g/kg", "g/kg"]
    assert bundle.recipe.model.head.n_targets == 4 + 2 + 4
    image = np.random.default_rng(0).uniform(0, 0.3, (3, len(bundle.meta.bands), 16, 16)).astype(np.float32)
    out = bundle.predict_outputs(image, None)
    assert out["soc_g_kg_20_50cm"]["mean"].shape == (3,) and out["permafrost_0_20cm"]["probabilities"].shape == (3, 2)
    shift, scale = bundle.meta.target_scaling[0]  # per head column: logits are not rescaled
    assert len(shift) == 10 and shift[4:] == [0.0] * 6 and scale[4:] == [1.0] * 6
    # registered as an MLflow Model: one output per target, class probabilities for the class targets
    import mlflow.pyfunc

    from soilnet.tracking.mlflow_model import save_bundle_model

    pyfunc = mlflow.pyfunc.load_model(str(save_bundle_model(cv.bundle, tmp_path / "model")))
    climate = np.zeros((3, bundle.meta.months, len(bundle.meta.climate_variables)), np.float32)
    served = pyfunc.predict({"image": image, "climate": climate})
    assert set(served) == set(names) and served["taxonomy_order_0_20cm"].shape == (3, 4)
    np.testing.assert_allclose(served["ph_h2o_0_20cm"], bundle.predict_outputs(image, climate)["ph_h2o_0_20cm"]["mean"])
