"""Regression metrics of soil-property predictions and their per-fold summaries.

Formulas (y observed, p predicted), as in REFERENCE.md:

- RMSE = sqrt(mean((y - p)^2)); MAE = mean(|y - p|); ME (bias) = mean(p - y)
- R2 = 1 - SS_res / SS_tot (the scikit-learn definition)
- CCC (Lin) = 2 cov(y, p) / (var(y) + var(p) + (mean(y) - mean(p))^2), population moments
- RPIQ = (Q3(y) - Q1(y)) / RMSE with the quartiles of the OBSERVED values

Undefined values are NaN rather than an error, so one degenerate fold does not abort a
cross-validation: R2 and CCC when the observed values are constant, RPIQ when RMSE is 0 and
the observed interquartile range too (RPIQ is +inf for a perfect fit of spread-out values).

Per-fold tables (contract C3) have the columns ``model``, ``target``, ``fold``, ``n`` and one numeric
column per metric: the regression metrics here, the classification metrics of
`soilnet.evaluation.classification` (``CLASSIFICATION_METRIC_NAMES``), or any other numeric column a
scorer adds (such as interval coverage). Tables of several targets and kinds are concatenated; a
metric that is NaN in every fold of a (target, model) is left out of its summary unless it belongs
to that target's kind. The comparison table has one row block per target.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

METRIC_NAMES: tuple[str, ...] = ("rmse", "mae", "me", "r2", "ccc", "rpiq")
"""Regression metric names in the order of every table."""

CLASSIFICATION_METRIC_NAMES: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss")
"""Classification metric names in table order (computed in `soilnet.evaluation.classification`)."""

HIGHER_IS_BETTER: dict[str, bool] = {
    "rmse": False,
    "mae": False,
    "me": False,  # compare |me|: a bias of 0 is best
    "r2": True,
    "ccc": True,
    "rpiq": True,
    "accuracy": True,
    "balanced_accuracy": True,
    "macro_f1": True,
    "log_loss": False,
}
"""Direction of each metric, for model selection (``me`` is best at 0)."""

#: Identifying columns of a per-fold table; every other numeric column is a metric.
ID_COLUMNS: tuple[str, ...] = ("model", "target", "fold", "n")


def is_better(metric: str, candidate: float, current: float) -> bool:
    """True if `candidate` strictly beats `current` on `metric` (``me`` compares |bias|)."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(HIGHER_IS_BETTER)}")
    if metric == "me":
        return abs(candidate) < abs(current)
    return candidate > current if HIGHER_IS_BETTER[metric] else candidate < current


def check_pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate observed and predicted values and return them as 1-D float64 arrays.

    Raises ValueError naming the problem: not 1-D, different lengths, fewer than 2 points,
    or a NaN / infinite value (with the first offending row).
    """
    arrays = []
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n,), got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"{name} has {bad.size} NaN/infinite value(s), first at row {bad[0]} ({arr[bad[0]]})")
        arrays.append(arr)
    y, p = arrays
    if y.shape != p.shape:
        raise ValueError(f"length mismatch: y_true has {y.size} values, y_pred has {p.size}")
    if y.size < 2:
        raise ValueError(f"metrics need at least 2 points, got {y.size}")
    return y, p


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    y, p = check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error."""
    y, p = check_pair(y_true, y_pred)
    return float(np.mean(np.abs(y - p)))


def mean_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean error (bias), mean(p - y): positive when the model over-predicts."""
    y, p = check_pair(y_true, y_pred)
    return float(np.mean(p - y))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot; NaN if the observed values are constant."""
    y, p = check_pair(y_true, y_pred)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Lin's concordance correlation coefficient with population (ddof=0) moments."""
    y, p = check_pair(y_true, y_pred)
    covariance = float(np.mean((y - y.mean()) * (p - p.mean())))
    denominator = float(y.var() + p.var() + (y.mean() - p.mean()) ** 2)
    if denominator == 0.0:
        return float("nan")
    return 2.0 * covariance / denominator


def rpiq(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Ratio of performance to interquartile distance, (Q3(y) - Q1(y)) / RMSE, y observed."""
    y, p = check_pair(y_true, y_pred)
    q1, q3 = np.percentile(y, [25.0, 75.0])
    iqr = float(q3 - q1)
    error = float(np.sqrt(np.mean((y - p) ** 2)))
    if error == 0.0:
        return float("inf") if iqr > 0.0 else float("nan")
    return iqr / error


METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "rmse": rmse,
    "mae": mae,
    "me": mean_error,
    "r2": r2,
    "ccc": ccc,
    "rpiq": rpiq,
}


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All metrics of `METRIC_NAMES` for one set of predictions."""
    y, p = check_pair(y_true, y_pred)
    return {name: METRICS[name](y, p) for name in METRIC_NAMES}


def per_fold_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, fold_ids: ArrayLike, model: str, target: str = ""
) -> pd.DataFrame:
    """Metrics of out-of-fold predictions, one row per fold.

    Columns: ``model``, ``target`` (the output's name; empty when the caller has a single unnamed
    target), ``fold``, ``n`` and one column per metric. Each fold needs at least 2 points.
    """
    y, p = check_pair(y_true, y_pred)
    folds = np.asarray(fold_ids)
    if folds.shape != y.shape:
        raise ValueError(f"fold_ids has shape {folds.shape}, expected ({y.size},) like y_true")
    rows = []
    for fold in np.unique(folds):
        mask = folds == fold
        try:
            values = regression_metrics(y[mask], p[mask])
        except ValueError as exc:
            raise ValueError(f"model {model!r}, fold {fold}: {exc}") from exc
        rows.append({"model": model, "target": target, "fold": int(fold), "n": int(mask.sum()), **values})
    return pd.DataFrame(rows, columns=[*ID_COLUMNS, *METRIC_NAMES])


def metric_columns(per_fold: pd.DataFrame) -> list[str]:
    """The metric columns of a per-fold table in table order: regression, classification, then the others.

    Every numeric column that is not an identifying one (`ID_COLUMNS`) is a metric.
    """
    numeric = [c for c in per_fold.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(per_fold[c])]
    known = [m for m in (*METRIC_NAMES, *CLASSIFICATION_METRIC_NAMES) if m in numeric]
    return known + [c for c in numeric if c not in known]


def _with_target(per_fold: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``target`` column of strings (empty for tables written before targets were named)."""
    targets = per_fold["target"] if "target" in per_fold.columns else pd.Series("", index=per_fold.index)
    return per_fold.assign(target=targets.fillna("").astype(str))


def mean_std(long: pd.DataFrame, keys: list[str], ddof: int = 1) -> pd.DataFrame:
    """Mean, std (``ddof``) and count of the non-NaN ``value`` per group of `keys` (groups in order of appearance)."""
    grouped = long.groupby(keys, sort=False)["value"]
    return grouped.agg(mean="mean", std=lambda v: v.std(ddof=ddof), n_folds="count").reset_index()


def summarise_folds(per_fold: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Tidy mean and standard deviation over folds of each target, model and metric.

    `per_fold` has the columns of `per_fold_metrics` or of
    `soilnet.evaluation.classification.per_fold_classification` (several models and targets may be
    concatenated). Returns one row per (target, model, metric) with ``mean``, ``std`` (``ddof`` 1 by
    default: the sample standard deviation over folds; NaN with a single fold) and ``n_folds``, the
    number of folds where the metric is defined (NaN values are skipped). A metric undefined in every
    fold of a (target, model) is left out unless it is one of the metrics of that target's kind
    (classification when it has classification metrics). Targets, then models, keep their order of
    first appearance.
    """
    missing = [c for c in ("model", "fold") if c not in per_fold.columns]
    if missing:
        raise ValueError(f"per-fold table lacks column(s) {missing}")
    metrics = metric_columns(per_fold)
    if not metrics:
        raise ValueError(f"per-fold table has no metric column (columns: {list(per_fold.columns)})")
    if per_fold.empty:
        raise ValueError("per-fold table is empty")
    table = _with_target(per_fold)
    duplicated = table.duplicated(["target", "model", "fold"])
    if duplicated.any():
        row = table.loc[duplicated].iloc[0]
        where = f"target {row['target']!r}, " if row["target"] else ""
        raise ValueError(f"per-fold table repeats {where}model {row['model']!r}, fold {row['fold']}")
    long = table.melt(id_vars=["target", "model", "fold"], value_vars=metrics, var_name="metric")
    summary = mean_std(long, ["target", "model", "metric"], ddof)
    scored = table.reindex(columns=list(CLASSIFICATION_METRIC_NAMES)).notna().any(axis=1)
    classifying = set(zip(table.loc[scored, "target"], table.loc[scored, "model"], strict=True))
    own = [
        m in (CLASSIFICATION_METRIC_NAMES if (t, model) in classifying else METRIC_NAMES)
        for t, model, m in zip(summary["target"], summary["model"], summary["metric"], strict=True)
    ]
    summary = summary[(summary["n_folds"] > 0) | np.asarray(own, dtype=bool)]
    for column, order in (
        ("target", list(dict.fromkeys(table["target"]))),
        ("model", list(dict.fromkeys(table["model"]))),
        ("metric", metrics),
    ):
        summary[column] = pd.Categorical(summary[column], categories=order, ordered=True)
    summary = summary.sort_values(["target", "model", "metric"]).reset_index(drop=True)
    return summary.astype({"target": str, "model": str, "metric": str})


def comparison_frame(summary: pd.DataFrame, digits: int = 3, target: str | None = None) -> pd.DataFrame:
    """Wide table of ``"mean ± std"`` strings of one target: one row per model, one column per metric.

    `target` may be omitted when the summary holds a single target; an empty cell is a metric the
    model was not scored on (such as interval coverage of a model without intervals).
    """
    missing = [c for c in ("model", "metric", "mean", "std") if c not in summary.columns]
    if missing:
        raise ValueError(f"summary table lacks column(s) {missing}")
    summary = _with_target(summary)
    targets = list(dict.fromkeys(summary["target"]))
    if target is None and len(targets) > 1:
        raise ValueError(f"summary holds several targets {targets}: name the one to tabulate")
    target = targets[0] if target is None else target
    if target not in targets:
        raise ValueError(f"summary has no target {target!r} (targets: {targets})")
    block = summary[summary["target"] == target]
    cells = block.assign(
        cell=[f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(block["mean"], block["std"], strict=True)]
    )
    wide = cells.pivot(index="model", columns="metric", values="cell").fillna("")
    order = list(dict.fromkeys(block["model"]))
    columns = list(dict.fromkeys(block["metric"]))
    return wide.loc[order, columns].rename_axis(index="model", columns=None)


def _aligned(wide: pd.DataFrame) -> list[str]:
    """Text lines of a wide table: header, rule, one line per row; first column left-aligned, others right."""
    header = [str(c) for c in wide.columns]
    body = [[str(v) for v in row] for row in wide.itertuples(index=False)]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in body)]


def format_comparison(summary: pd.DataFrame, digits: int = 3) -> str:
    """Plain-text comparison across models (rows) of metric mean ± std (columns), one block per target.

    Each named target's block starts with a ``target: <name>`` line; a summary of one unnamed
    target is a single block without that line.
    """
    summary = _with_target(summary)
    blocks = []
    for target in dict.fromkeys(summary["target"]):
        lines = _aligned(comparison_frame(summary, digits, target).reset_index())
        blocks.append("\n".join([f"target: {target}", *lines] if target else lines))
    return "\n\n".join(blocks)
