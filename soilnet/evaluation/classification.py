"""Classification metrics of categorical soil targets (``permafrost``, ``taxonomy_order``) per fold.

Inputs are class codes (the index of each label in the target's sorted vocabulary, contract C1)
and class probabilities (N, K) over the whole vocabulary; the predicted class is the most probable
one (the lowest code on a tie). The definitions are scikit-learn's, and the tests compare every
value with `sklearn.metrics`:

- accuracy: the share of rows whose predicted class is the observed one;
- balanced accuracy: the mean recall over the classes observed in the fold (``balanced_accuracy_score``);
- macro-F1: the mean of ``2 TP / (2 TP + FP + FN)`` over the classes observed or predicted in the
  fold (``f1_score(average="macro")``): a class absent from a fold and never predicted there does
  not count;
- per-class precision ``TP / (TP + FP)`` and recall ``TP / (TP + FN)`` of every vocabulary class,
  NaN where undefined (never predicted / never observed; ``zero_division=np.nan``);
- log-loss: ``-mean(log p[observed class])`` with the probabilities clipped to [eps, 1 - eps]
  (float64 eps), ``log_loss(labels=range(K))``;
- the confusion matrix: rows observed, columns predicted (``confusion_matrix``).

All but the log-loss come from one confusion matrix per fold. Per fold the scores go into three
tables: the per-fold table of contract C3 (``model``, ``target``, ``fold``, ``n`` and the metrics of
``CLASSIFICATION_METRIC_NAMES``, summarised by `soilnet.evaluation.metrics.summarise_folds`), a
per-class table (precision, recall, support) and the confusion matrix in long form (observed,
predicted, count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from soilnet.evaluation.metrics import CLASSIFICATION_METRIC_NAMES, ID_COLUMNS, mean_std

#: How far a row of probabilities may sum from 1.
SUM_TOLERANCE = 1e-4
PER_CLASS_COLUMNS = ("model", "target", "fold", "class", "support", "precision", "recall")
CONFUSION_COLUMNS = ("model", "target", "fold", "observed", "predicted", "count")


def check_classes(codes: ArrayLike, proba: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Validate class codes (N,) and probabilities (N, K); return them as int64 and float64 arrays.

    Raises ValueError naming the problem and the first offending row: codes not whole numbers in
    [0, K), probabilities not finite, outside [0, 1] or with a row that does not sum to 1.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be (N, K) with K >= 2 classes, got shape {p.shape}")
    raw = np.asarray(codes)
    if raw.ndim != 1 or raw.shape[0] != p.shape[0]:
        raise ValueError(f"class codes must be ({p.shape[0]},) like the probabilities' rows, got shape {raw.shape}")
    values = raw.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= p.shape[1]))
    if bad.size:
        raise ValueError(f"class code {raw[bad[0]]} at row {bad[0]} is not a class index in [0, {p.shape[1]})")
    bad = np.flatnonzero(~np.isfinite(p).all(axis=1) | (p < 0).any(axis=1) | (p > 1).any(axis=1))
    if bad.size:
        raise ValueError(f"probabilities at row {bad[0]} are not finite values in [0, 1]: {p[bad[0]].tolist()}")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if bad.size:
        raise ValueError(f"probabilities at row {bad[0]} sum to {sums[bad[0]]:.6g}, not 1")
    return values.astype(np.int64), p


def predicted_classes(proba: ArrayLike) -> NDArray[np.int64]:
    """The most probable class of each row of (N, K) probabilities (the lowest code on a tie)."""
    return np.asarray(proba).argmax(axis=1).astype(np.int64)


def confusion_matrix(observed: ArrayLike, predicted: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """(K, K) counts of rows observed as class i (row) and predicted as class j (column)."""
    obs, pred = np.asarray(observed, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(obs * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def class_precision_recall(confusion: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-class precision and recall of a confusion matrix; NaN for a class never predicted / never observed."""
    tp = np.diag(confusion).astype(np.float64)
    predicted, observed = confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(predicted > 0, tp / predicted, np.nan), np.where(observed > 0, tp / observed, np.nan)


def confusion_scores(confusion: NDArray[np.int64]) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 of a confusion matrix (scikit-learn's definitions)."""
    tp = np.diag(confusion).astype(np.float64)
    predicted, observed = confusion.sum(axis=0), confusion.sum(axis=1)
    _, recall = class_precision_recall(confusion)
    seen = (observed + predicted) > 0
    f1 = 2 * tp[seen] / (observed[seen] + predicted[seen])  # 2 TP / (2 TP + FP + FN)
    return {
        "accuracy": float(tp.sum() / confusion.sum()),
        "balanced_accuracy": float(np.nanmean(recall)),
        "macro_f1": float(f1.mean()),
    }


def log_loss(codes: ArrayLike, proba: ArrayLike) -> float:
    """Mean negative log-probability of the observed class, probabilities clipped to [eps, 1 - eps]."""
    y, p = check_classes(codes, proba)
    eps = np.finfo(np.float64).eps
    return float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], eps, 1 - eps))))


def classification_metrics(codes: ArrayLike, proba: ArrayLike) -> dict[str, float]:
    """All metrics of `CLASSIFICATION_METRIC_NAMES` for one set of predictions (at least one row)."""
    y, p = check_classes(codes, proba)
    if y.size == 0:
        raise ValueError("classification metrics need at least 1 row, got 0")
    scores = confusion_scores(confusion_matrix(y, predicted_classes(p), p.shape[1]))
    scores["log_loss"] = log_loss(y, p)
    return {name: scores[name] for name in CLASSIFICATION_METRIC_NAMES}


@dataclass(frozen=True)
class ClassScores:
    """Per-fold scores of one model on one categorical target (several may be concatenated by `concat`)."""

    per_fold: pd.DataFrame
    per_class: pd.DataFrame
    confusion: pd.DataFrame

    @staticmethod
    def concat(scores: Sequence[ClassScores]) -> ClassScores:
        """The tables of several models or targets, one after another."""
        names = [f.name for f in fields(ClassScores)]
        return ClassScores(*(pd.concat([getattr(s, n) for s in scores], ignore_index=True) for n in names))


def per_fold_classification(
    codes: ArrayLike, proba: ArrayLike, fold_ids: ArrayLike, model: str, target: str, classes: Sequence[str]
) -> ClassScores:
    """Scores of out-of-fold class probabilities, per fold: metrics, per-class precision / recall, confusion.

    `classes` is the target's vocabulary (labels of codes 0..K-1); the class tables name classes by label.
    """
    y, p = check_classes(codes, proba)
    if p.shape[1] != len(classes):
        raise ValueError(f"{target}: probabilities have {p.shape[1]} columns for {len(classes)} classes {classes}")
    folds = np.asarray(fold_ids)
    if folds.shape != y.shape:
        raise ValueError(f"fold_ids has shape {folds.shape}, expected ({y.size},) like the class codes")
    labels = list(classes)
    rows, class_rows, cells = [], [], []
    for fold in np.unique(folds):
        mask = folds == fold
        confusion = confusion_matrix(y[mask], predicted_classes(p[mask]), len(labels))
        scores = {**confusion_scores(confusion), "log_loss": log_loss(y[mask], p[mask])}
        rows.append({"model": model, "target": target, "fold": int(fold), "n": int(mask.sum()), **scores})
        precision, recall = class_precision_recall(confusion)
        support = confusion.sum(axis=1)
        class_rows += [
            (model, target, int(fold), label, int(support[k]), precision[k], recall[k])
            for k, label in enumerate(labels)
        ]
        cells += [
            (model, target, int(fold), labels[i], labels[j], int(confusion[i, j]))
            for i in range(len(labels))
            for j in range(len(labels))
        ]
    return ClassScores(
        pd.DataFrame(rows, columns=[*ID_COLUMNS, *CLASSIFICATION_METRIC_NAMES]),
        pd.DataFrame(class_rows, columns=list(PER_CLASS_COLUMNS)),
        pd.DataFrame(cells, columns=list(CONFUSION_COLUMNS)),
    )


def summarise_classes(per_class: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Mean and std over folds of per-class precision and recall: one row per (target, model, class, metric).

    Folds where a value is undefined (the class never predicted or never observed there) are skipped;
    ``n_folds`` counts the others. ``support`` is the class's number of observed rows over all folds.
    """
    missing = [c for c in PER_CLASS_COLUMNS if c not in per_class.columns]
    if missing:
        raise ValueError(f"per-class table lacks column(s) {missing}")
    keys = ["target", "model", "class"]
    long = per_class.melt(id_vars=[*keys, "fold"], value_vars=["precision", "recall"], var_name="metric")
    summary = mean_std(long, [*keys, "metric"], ddof)
    support = per_class.groupby(keys, sort=False)["support"].sum().rename("support").reset_index()
    return summary.merge(support, on=keys, how="left")


def confusion_totals(confusion: pd.DataFrame) -> pd.DataFrame:
    """The out-of-fold confusion matrix of each (target, model): counts summed over folds, long form."""
    keys = ["target", "model", "observed", "predicted"]
    return confusion.groupby(keys, sort=False)["count"].sum().reset_index()


def format_class_table(summary: pd.DataFrame, digits: int = 3) -> str:
    """Plain-text per-class precision and recall (mean ± std over folds), one line per (target, model, class)."""
    lines = []
    for (target, model, label), rows in summary.groupby(["target", "model", "class"], sort=False):
        cells = {r.metric: f"{r.mean:.{digits}f} ± {r.std:.{digits}f}" for r in rows.itertuples(index=False)}
        support = int(rows["support"].iloc[0])
        lines.append(
            f"{target}  {model}  {label}: precision {cells['precision']}  recall {cells['recall']}  (n={support})"
        )
    return "\n".join(lines)


def classify_line(summary: pd.DataFrame, target: str, model: str, baseline: str = "random_forest") -> str:
    """The headline of a categorical target: ``CLASSIFY[<target>]: balanced_accuracy=B macro_f1=F rf_macro_f1=R
    (target: macro_f1 > rf_macro_f1)``, from the fold means of `model` and of the random forest `baseline`
    (``nan`` for a score that is not in the summary)."""

    def mean(name: str, metric: str) -> float:
        row = summary[(summary["target"] == target) & (summary["model"] == name) & (summary["metric"] == metric)]
        return float(row["mean"].iloc[0]) if len(row) else float("nan")

    return (
        f"CLASSIFY[{target}]: balanced_accuracy={mean(model, 'balanced_accuracy'):.3f} "
        f"macro_f1={mean(model, 'macro_f1'):.3f} rf_macro_f1={mean(baseline, 'macro_f1'):.3f} "
        "(target: macro_f1 > rf_macro_f1)"
    )
