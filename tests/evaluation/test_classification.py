"""Classification metrics: equal to scikit-learn's, per fold, with classes absent from a fold."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from soilnet.evaluation import classification as cl
from soilnet.evaluation import metrics

CLASSES = ["alfisols", "entisols", "gelisols", "inceptisols"]


def _probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    logits = rng.normal(0.0, 2.0, (n, k))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sklearn(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": the point of some cases
        return {
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "macro_f1": skm.f1_score(y, pred, average="macro"),
            "log_loss": skm.log_loss(y, proba, labels=list(range(proba.shape[1]))),
        }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_sklearn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    proba = _probabilities(rng, 60, 4)
    y = rng.integers(0, 4, 60)
    ours = cl.classification_metrics(y, proba)
    assert list(ours) == list(metrics.CLASSIFICATION_METRIC_NAMES)
    for name, value in _sklearn(y, proba).items():
        assert ours[name] == pytest.approx(value, rel=1e-12), name


def test_class_absent_from_a_fold_follows_sklearn():
    # fold 0: class 3 never observed but predicted once; class 2 neither observed nor predicted
    y = np.array([0, 0, 1, 1, 1, 0, 3, 2, 2, 3])
    pred = np.array([0, 3, 1, 1, 0, 0, 3, 2, 1, 3])
    folds = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    proba = np.full((10, 4), 0.1)
    proba[np.arange(10), pred] = 0.7
    scores = cl.per_fold_classification(y, proba, folds, "rf", "taxonomy_order", CLASSES)
    for fold in (0, 1):
        m = folds == fold
        expected = _sklearn(y[m], proba[m])
        row = scores.per_fold[scores.per_fold["fold"] == fold].iloc[0]
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-12), (fold, name)
        precision, recall, _, support = skm.precision_recall_fscore_support(
            y[m], pred[m], labels=[0, 1, 2, 3], zero_division=np.nan
        )
        rows = scores.per_class[scores.per_class["fold"] == fold]
        np.testing.assert_array_equal(rows["class"], CLASSES)
        np.testing.assert_allclose(rows["precision"], precision, equal_nan=True)
        np.testing.assert_allclose(rows["recall"], recall, equal_nan=True)
        np.testing.assert_array_equal(rows["support"], support)
        cells = scores.confusion[scores.confusion["fold"] == fold]["count"].to_numpy().reshape(4, 4)
        np.testing.assert_array_equal(cells, skm.confusion_matrix(y[m], pred[m], labels=[0, 1, 2, 3]))
    fold0 = scores.per_fold.iloc[0]
    # hand-worked fold 0: recalls 1/2 (class 0), 2/3 (class 1); F1 over classes 0, 1, 3 (2 TP / (obs + pred))
    assert fold0["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert fold0["macro_f1"] == pytest.approx((2 / 4 + 4 / 5 + 0.0) / 3)
    assert fold0["accuracy"] == pytest.approx(3 / 5)
    assert fold0["log_loss"] == pytest.approx(-np.log(0.7) * 3 / 5 - np.log(0.1) * 2 / 5)
    absent = scores.per_class[(scores.per_class["fold"] == 0) & (scores.per_class["class"] == "gelisols")].iloc[0]
    assert absent["support"] == 0 and np.isnan(absent["precision"]) and np.isnan(absent["recall"])


def test_binary_target_with_two_probability_columns():
    rng = np.random.default_rng(4)
    proba = _probabilities(rng, 40, 2)
    y = (proba[:, 1] + rng.normal(0, 0.3, 40) > 0.5).astype(int)
    ours = cl.classification_metrics(y, proba)
    for name, value in _sklearn(y, proba).items():
        assert ours[name] == pytest.approx(value, rel=1e-12), name
    certain = np.eye(2)[y]  # probabilities of exactly 0 and 1 are clipped like sklearn's
    assert cl.log_loss(1 - y, certain) == pytest.approx(skm.log_loss(1 - y, certain, labels=[0, 1]))


@pytest.mark.parametrize(
    ("codes", "proba", "message"),
    [
        ([0, 4], np.full((2, 4), 0.25), r"class code 4 at row 1 is not a class index in \[0, 4\)"),
        ([0, 1.5], np.full((2, 4), 0.25), "class code 1.5 at row 1"),
        ([0, 1], np.full((2, 4), 0.3), "row 0 sum to 1.2, not 1"),
        ([0, 1], [[0.5, 0.5], [np.nan, 1.0]], "row 1 are not finite values"),
        ([0, 1, 1], np.full((2, 2), 0.5), r"must be \(2,\)"),
        ([0, 1], np.ones((2, 1)), "K >= 2 classes"),
    ],
)
def test_bad_input_names_the_row(codes, proba, message):
    with pytest.raises(ValueError, match=message):
        cl.classification_metrics(codes, proba)


def test_summaries_of_regression_and_classification_targets_together():
    rng = np.random.default_rng(0)
    folds = np.repeat([0, 1, 2], 20)
    y = rng.normal(10, 2, 60)
    regression = pd.concat(
        [
            metrics.per_fold_metrics(y, y + rng.normal(0, 1, 60), folds, "finetuned", "soc_g_kg"),
            metrics.per_fold_metrics(y, y + rng.normal(0, 2, 60), folds, "random_forest", "soc_g_kg"),
        ]
    )
    codes = rng.integers(0, 2, 60)
    scores = cl.ClassScores.concat(
        [
            cl.per_fold_classification(codes, _probabilities(rng, 60, 2), folds, m, "permafrost", ["no", "yes"])
            for m in ("finetuned", "random_forest")
        ]
    )
    per_fold = pd.concat([regression, scores.per_fold], ignore_index=True)
    summary = metrics.summarise_folds(per_fold)
    assert list(dict.fromkeys(summary["target"])) == ["soc_g_kg", "permafrost"]
    soc = summary[summary["target"] == "soc_g_kg"]
    assert soc["metric"].tolist() == [*metrics.METRIC_NAMES] * 2
    permafrost = summary[(summary["target"] == "permafrost") & (summary["model"] == "random_forest")]
    assert permafrost["metric"].tolist() == list(metrics.CLASSIFICATION_METRIC_NAMES)
    f1 = scores.per_fold.loc[scores.per_fold["model"] == "random_forest", "macro_f1"]
    row = permafrost[permafrost["metric"] == "macro_f1"].iloc[0]
    assert row["mean"] == pytest.approx(f1.mean()) and row["std"] == pytest.approx(f1.std(ddof=1))
    text = metrics.format_comparison(summary, digits=2).split("\n\n")
    assert [block.splitlines()[0] for block in text] == ["target: soc_g_kg", "target: permafrost"]
    assert text[1].splitlines()[1].split() == ["model", *metrics.CLASSIFICATION_METRIC_NAMES]
    assert text[1].splitlines()[4].startswith("random_forest")


def test_per_class_summary_and_confusion_totals():
    y = np.array([0, 1, 1, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9], [0.4, 0.6]])
    scores = cl.per_fold_classification(y, proba, [0, 0, 0, 1, 1, 1], "rf", "permafrost", ["no", "yes"])
    summary = cl.summarise_classes(scores.per_class)
    yes_recall = summary[(summary["class"] == "yes") & (summary["metric"] == "recall")].iloc[0]
    assert yes_recall["mean"] == pytest.approx(0.75) and yes_recall["support"] == 4
    no_precision = summary[(summary["class"] == "no") & (summary["metric"] == "precision")].iloc[0]
    assert no_precision["n_folds"] == 1 and no_precision["mean"] == pytest.approx(0.5)  # fold 1 never predicts "no"
    totals = cl.confusion_totals(scores.confusion)
    np.testing.assert_array_equal(totals["count"], skm.confusion_matrix(y, proba.argmax(1)).ravel())
    text = cl.format_class_table(summary, digits=2)
    assert "permafrost  rf  yes: precision 0.83 ± 0.24  recall 0.75 ± 0.35  (n=4)" in text


def test_classify_line_reads_the_fold_means():
    summary = pd.DataFrame(
        {
            "target": ["permafrost"] * 3,
            "model": ["finetuned", "finetuned", "random_forest"],
            "metric": ["balanced_accuracy", "macro_f1", "macro_f1"],
            "mean": [0.8123, 0.7951, 0.7012],
            "std": [0.01, 0.02, 0.03],
        }
    )
    assert cl.classify_line(summary, "permafrost", "finetuned") == (
        "CLASSIFY[permafrost]: balanced_accuracy=0.812 macro_f1=0.795 rf_macro_f1=0.701 "
        "(target: macro_f1 > rf_macro_f1)"
    )
    assert "rf_macro_f1=nan" in cl.classify_line(summary.iloc[:2], "permafrost", "finetuned")
