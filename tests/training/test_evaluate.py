"""The comparison with the baselines per target: row blocks, CLASSIFY lines, MLflow names, class artifacts."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from soilnet.data.targets import TargetOutput
from soilnet.evaluation.classification import per_fold_classification
from soilnet.evaluation.metrics import per_fold_metrics
from soilnet.training.config import EvaluateConfig
from soilnet.training.evaluate import compare_with_baselines
from soilnet.training.finetune import MODEL_NAME, CrossValidation

N, C, P, T, V = 120, 3, 5, 4, 2


class _Source:
    """Samples of the table's rows: a centre pixel that carries the labels' signal."""

    def __init__(self, centre: np.ndarray, climate: np.ndarray) -> None:
        self.centre, self.climate = centre, climate

    def read(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        image = np.zeros((len(table), C, P, P))
        image[:, :, P // 2, P // 2] = self.centre[table.index]
        return {"image": image, "climate": self.climate[table.index]}


class _Tracker:
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.texts: dict[str, str] = {}

    def log_metrics(self, metrics):
        self.metrics.update(metrics)

    def log_text(self, text, name):
        self.texts[name] = text

    def log_figure(self, figure, name):
        self.texts[name] = "figure"

    def flush(self):
        return True


def _run():
    rng = np.random.default_rng(0)
    centre = rng.uniform(0, 1, (N, C))
    climate = rng.normal(0, 1, (N, T, V))
    folds = np.repeat([0, 1, 2], N // 3)
    soc = 20 * centre[:, 0] + rng.normal(0, 1, N)
    soc[::7] = np.nan  # not measured there
    codes = (centre[:, 1] > 0.5).astype(float)
    outputs = [
        TargetOutput("soc_g_kg", "soc_g_kg", "continuous"),
        TargetOutput("permafrost", "permafrost", "binary", classes=("no", "yes")),
    ]
    soc_pred = soc + rng.normal(0, 2, N)
    proba = np.clip(np.stack([1 - codes, codes], axis=1) * 0.8 + 0.1 + rng.normal(0, 0.05, (N, 1)) * [1, -1], 0, 1)
    proba /= proba.sum(axis=1, keepdims=True)
    seen = np.isfinite(soc)
    per_fold = pd.concat(
        [
            per_fold_metrics(soc[seen], soc_pred[seen], folds[seen], MODEL_NAME, "soc_g_kg"),
            per_fold_classification(codes.astype(int), proba, folds, MODEL_NAME, "permafrost", ["no", "yes"]).per_fold,
        ]
    )
    table = pd.DataFrame({"fold": folds, "x": rng.uniform(0, 1e4, N), "y": rng.uniform(0, 1e4, N), "target": soc})
    cv = CrossValidation(
        "run", table, soc_pred, per_fold, pd.DataFrame(), "", None, None,
        outputs=outputs, oof={"soc_g_kg": soc_pred, "permafrost": proba}, labels={"soc_g_kg": soc, "permafrost": codes},
    )  # fmt: skip
    return cv, _Source(centre, climate)


@pytest.fixture(scope="module")
def compared():
    cv, source = _run()
    cfg = EvaluateConfig(
        baselines={
            "models": ["random_forest"],
            "random_forest": {"n_estimators": 20},
            "classifier": {"n_estimators": 20},
        },
        plots=True,
    )
    tracker = _Tracker()
    return compare_with_baselines(cv, source, cfg, None, tracker, "soc_g_kg"), tracker


def test_one_row_block_per_target_and_a_classify_line(compared):
    comparison, _ = compared
    blocks = comparison.table.split("\n\n")
    assert blocks[0].startswith("target: soc_g_kg") and blocks[1].startswith("target: permafrost")
    assert [line.split()[0] for line in blocks[1].splitlines()[3:5]] == [MODEL_NAME, "random_forest"]
    summary = comparison.summary.set_index(["target", "model", "metric"])["mean"]
    line = comparison.table.splitlines()[-1]
    assert comparison.lines == [line]
    assert line == (
        f"CLASSIFY[permafrost]: balanced_accuracy={summary['permafrost', MODEL_NAME, 'balanced_accuracy']:.3f} "
        f"macro_f1={summary['permafrost', MODEL_NAME, 'macro_f1']:.3f} "
        f"rf_macro_f1={summary['permafrost', 'random_forest', 'macro_f1']:.3f} (target: macro_f1 > rf_macro_f1)"
    )
    assert summary["permafrost", "random_forest", "macro_f1"] > 0.8  # the classifier learnt the centre pixel
    rf_soc = comparison.per_fold[
        (comparison.per_fold["target"] == "soc_g_kg") & (comparison.per_fold["model"] == "random_forest")
    ]
    assert rf_soc["n"].sum() == np.isfinite(_run()[0].labels["soc_g_kg"]).sum()  # unlabelled rows left out


def test_mlflow_names_per_target_and_class_artifacts(compared):
    comparison, tracker = compared
    row = comparison.summary.set_index(["target", "model", "metric"]).loc[("permafrost", "random_forest", "macro_f1")]
    assert tracker.metrics["permafrost.random_forest.macro_f1_mean"] == pytest.approx(row["mean"])
    assert "random_forest.rmse_mean" in tracker.metrics  # the primary target's, also without its name
    assert "soc_g_kg.random_forest.rmse_mean" in tracker.metrics
    assert "random_forest.macro_f1_mean" not in tracker.metrics
    assert {"classes.txt", "classes_per_fold.csv", "confusion.csv", "plots/observed_vs_predicted.png"} <= set(
        tracker.texts
    )
    confusion = pd.read_csv(io.StringIO(tracker.texts["confusion.csv"]))
    assert set(confusion["model"]) == {MODEL_NAME, "random_forest"}
    assert confusion.groupby("model")["count"].sum().tolist() == [N, N]
