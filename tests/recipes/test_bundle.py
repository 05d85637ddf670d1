"""Model bundles: round trip on disk and S3, ensemble mean/spread, normalisation applied, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soilnet import storage
from soilnet.data.normalisation import NormStats, normalise_batch
from soilnet.data.targets import TargetOutput
from soilnet.recipes.bundle import BundleMeta, ensemble_outputs, load_bundle, save_bundle


def _stats(recipe) -> NormStats:
    d = recipe.data
    return NormStats(
        image_method="standard",
        bands=[f"b{i}" for i in range(d.n_bands)],
        image_center=[0.5] * d.n_bands,
        image_scale=[2.0] * d.n_bands,
        variables=[f"v{i}" for i in range(d.n_climate_vars)],
        climate_mean=[1.0] * d.n_climate_vars,
        climate_std=[3.0] * d.n_climate_vars,
        target_mean=20.0,
        target_std=5.0,
        n_rows=10,
    )


def _meta(recipe, stats: NormStats, folds: list[int]) -> BundleMeta:
    n = recipe.model.head.n_targets
    return BundleMeta(
        targets=[f"t{i}" for i in range(n)],
        units=["g/kg"] * n,
        bands=stats.bands,
        climate_variables=stats.variables,
        patch_px=recipe.data.patch_px,
        months=recipe.data.n_months,
        folds=folds,
        target_scaling=[(20.0, 5.0)] * len(folds),
        metrics={"rmse_mean": 1.5},
        mlflow_run_id="abc",
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_round_trip_predicts_like_the_saved_models(where, request, tmp_path, recipe):
    r = recipe("soilnet-tiny")
    base = request.getfixturevalue("s3_bucket") if where == "s3" else str(tmp_path)
    url = storage.join(base, "bundle")
    models = [r.build_model().eval() for _ in range(3)]
    stats = _stats(r)
    meta = _meta(r, stats, [0, 2, 5]).model_copy(update={"target_scaling": [(20.0, 5.0), (10.0, 2.0), (0.0, 1.0)]})
    save_bundle(url, r, models, stats, meta)

    bundle = load_bundle(url)
    assert bundle.meta.folds == [0, 2, 5] and bundle.meta.mlflow_run_id == "abc"
    assert bundle.recipe == r and bundle.stats == stats
    assert all(not m.training for m in bundle.models)

    d = r.data
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, d.n_bands, d.patch_px, d.patch_px)).astype(np.float32)
    image[0, 1, 3, 3] = np.nan
    climate = rng.normal(size=(4, d.n_months, d.n_climate_vars)).astype(np.float32)
    mean, std = bundle.predict(image, climate)
    assert mean.shape == std.shape == (4, r.model.head.n_targets)

    # Expected: normalise, de-standardise each model, mean + (spread^2 + mean head variance).
    norm = normalise_batch({"image": image, "climate": climate}, stats)
    with torch.no_grad():
        outs = [m(torch.from_numpy(norm["image"]), torch.from_numpy(norm["climate"])) for m in models]
    scaling = [(20.0, 5.0), (10.0, 2.0), (0.0, 1.0)]
    preds = np.stack([o["prediction"].numpy() * s + m for o, (m, s) in zip(outs, scaling, strict=True)])
    head_var = np.stack([np.exp(o["log_var"].numpy()) * s**2 for o, (_, s) in zip(outs, scaling, strict=True)])
    head_var = head_var.mean(0)
    np.testing.assert_allclose(mean, preds.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, np.sqrt(preds.var(0) + head_var), rtol=1e-5, atol=1e-5)


def test_single_model_without_variance_has_zero_spread(tmp_path, recipe):
    r = recipe("soilnet-climate").model_copy(update={"data": recipe("soilnet-tiny").data.model_copy()})
    r = r.model_copy(update={"data": r.data.model_copy(update={"n_climate_vars": 3, "n_months": 12})})
    stats = _stats(r)
    save_bundle(str(tmp_path / "b"), r, [r.build_model().eval()], stats, _meta(r, stats, []))
    bundle = load_bundle(str(tmp_path / "b"))
    mean, std = bundle.predict(np.zeros((2, r.data.n_bands, 32, 32), np.float32), np.ones((2, 12, 3), np.float32))
    assert bundle.meta.folds == [0]
    np.testing.assert_array_equal(std, 0.0)
    assert np.isfinite(mean).all()


def test_errors_name_the_problem(tmp_path, recipe):
    r = recipe("soilnet-tiny")
    stats = _stats(r)
    url = str(tmp_path / "b")
    with pytest.raises(ValueError, match="at least one model"):
        save_bundle(url, r, [], stats, _meta(r, stats, []))
    with pytest.raises(ValueError, match="2 folds for 1 models"):
        save_bundle(url, r, [r.build_model()], stats, _meta(r, stats, [0, 1]))
    bad = _meta(r, stats, [0]).model_copy(update={"target_scaling": [(0.0, 1.0)] * 2})
    with pytest.raises(ValueError, match="target_scaling has 2 entries for 1 models"):
        save_bundle(url, r, [r.build_model()], stats, bad)
    with pytest.raises(FileNotFoundError, match=r"recipe\.yaml is missing"):
        load_bundle(str(tmp_path))
    save_bundle(url, r, [r.build_model(), r.build_model()], stats, _meta(r, stats, [0, 1]))
    bundle = load_bundle(url)
    with pytest.raises(ValueError, match=r"image must be \(B, 5, P, P\)"):
        bundle.predict(np.zeros((1, 4, 32, 32), np.float32), None)
    with pytest.raises(ValueError, match="climate must be"):
        bundle.predict(np.zeros((1, 5, 32, 32), np.float32), np.zeros((1, 12, 2), np.float32))
    (tmp_path / "b" / "fold_1.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"fold weights \[1\]"):
        load_bundle(url)
    (tmp_path / "b" / "meta.json").write_text("{}")
    with pytest.raises(ValueError, match=r"meta\.json: not valid bundle metadata"):
        load_bundle(url)


def test_ensemble_outputs_per_target_hand_worked():
    outputs = [
        TargetOutput("soc_g_kg", "soc_g_kg", "continuous"),
        TargetOutput("permafrost", "permafrost", "binary", classes=("no", "yes")),
    ]
    # two fold models, one row: soc column then two logits; fold scalings per head column
    outs = [
        {"prediction": torch.tensor([[1.0, 0.0, 0.0]])},
        {"prediction": torch.tensor([[-1.0, 0.0, float(np.log(3.0))]])},
    ]
    scaling = [([10.0, 0.0, 0.0], [2.0, 1.0, 1.0]), ([20.0, 0.0, 0.0], [4.0, 1.0, 1.0])]
    result = ensemble_outputs(outs, scaling, outputs)
    # soc: 1 * 2 + 10 = 12 and -1 * 4 + 20 = 16 -> mean 14, population std 2
    assert result["soc_g_kg"]["mean"].item() == pytest.approx(14.0)
    assert result["soc_g_kg"]["std"].item() == pytest.approx(2.0)
    # permafrost: softmax (0.5, 0.5) and (0.25, 0.75) -> mean (0.375, 0.625); logits are never rescaled
    np.testing.assert_allclose(result["permafrost"]["probabilities"].numpy(), [[0.375, 0.625]])


def test_old_meta_reads_as_continuous_and_class_targets_need_a_vocabulary(tmp_path, recipe):
    r = recipe("soilnet-tiny")
    stats = _stats(r)
    meta = BundleMeta.model_validate_json(_meta(r, stats, [0]).model_dump_json(exclude={"kinds", "classes"}))
    assert [(o.name, o.kind, o.width) for o in meta.outputs()] == [(t, "continuous", 1) for t in meta.targets]
    bad = meta.model_copy(update={"kinds": ["continuous", "multiclass"]})
    with pytest.raises(ValueError, match="lacks the vocabulary of categorical targets"):
        save_bundle(str(tmp_path / "b"), r, [r.build_model()], stats, bad)
