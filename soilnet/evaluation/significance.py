"""Which models of an experiment differ significantly: paired tests over folds or a bootstrap over points.

Every model of an experiment is scored on the same spatial folds and points, so comparisons are paired:

- ``ttest``: a two-sided paired t-test on the per-fold scores (scipy's ``ttest_rel``): with 5-10
  spatial folds it is the more powerful of the fold tests; it assumes roughly normal differences and
  treats folds as independent, which spatial folds only approximate.
- ``wilcoxon``: the two-sided Wilcoxon signed-rank test on the same per-fold differences (exact
  distribution); with k folds its smallest p-value is 2 / 2^k (0.031 with 6 folds), so it only
  rejects at 0.05 when every fold agrees.
- ``bootstrap``: a paired bootstrap over points of the difference in pooled RMSE of the out-of-fold
  predictions (resampling points with replacement); the two-sided p-value is twice the smaller share
  of resampled differences on either side of 0.

With several models every pair is tested and the p-values are adjusted with Holm's step-down method,
which keeps the family-wise error rate at alpha.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

PairedTest = Literal["ttest", "wilcoxon", "bootstrap"]


def fold_test(a: ArrayLike, b: ArrayLike, method: Literal["ttest", "wilcoxon"]) -> float:
    """Two-sided p-value that per-fold scores `a` and `b` (same folds, same order) have equal means.

    Identical scores give p = 1; fewer than 2 folds is an error.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired scores must be two 1-D arrays of equal length, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"a paired test over folds needs at least 2 folds, got {x.size}")
    if not np.isfinite(x).all() or not np.isfinite(y).all():
        raise ValueError("paired scores hold NaN or infinite values")
    diff = x - y
    if np.allclose(diff, 0.0):
        return 1.0
    if method == "ttest":
        return float(stats.ttest_rel(x, y).pvalue)
    if method == "wilcoxon":
        return float(stats.wilcoxon(x, y, alternative="two-sided").pvalue)
    raise ValueError(f"unknown fold test {method!r}; use ttest or wilcoxon")


def bootstrap_rmse_test(
    y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, n_samples: int = 2000, seed: int = 0
) -> float:
    """Two-sided p-value of a paired bootstrap over points for RMSE(a) - RMSE(b) = 0."""
    y, a, b = (np.asarray(v, dtype=np.float64) for v in (y_true, pred_a, pred_b))
    if not y.shape == a.shape == b.shape or y.ndim != 1:
        raise ValueError(f"observed and predicted values must be 1-D of equal length: {y.shape}, {a.shape}, {b.shape}")
    if not (np.isfinite(y).all() and np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("bootstrap over points: observed or predicted values hold NaN or infinite values")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_samples, y.size))
    sq_a, sq_b = (a - y) ** 2, (b - y) ** 2
    diff = np.sqrt(sq_a[idx].mean(axis=1)) - np.sqrt(sq_b[idx].mean(axis=1))
    if np.allclose(diff, 0.0):
        return 1.0
    below, above = (diff <= 0).mean(), (diff >= 0).mean()
    return float(min(1.0, 2.0 * min(below, above)))


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given), capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def pairwise_tests(
    fold_scores: pd.DataFrame,
    method: PairedTest = "ttest",
    alpha: float = 0.05,
    points: Mapping[str, np.ndarray] | None = None,
    observed: np.ndarray | None = None,
    n_samples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Test every pair of models; one row per pair (model order of the columns).

    `fold_scores` has one row per fold and one column per model (the score the fold tests compare,
    RMSE in an experiment). The bootstrap needs `points` (model -> out-of-fold predictions, every
    model over the same points) and `observed` values instead. Columns: ``a``, ``b``, ``mean_a``,
    ``mean_b`` (mean over folds), ``diff`` (mean_a - mean_b), ``p``, ``p_holm`` and ``significant``
    (``p_holm < alpha``).
    """
    models = list(fold_scores.columns)
    if len(models) < 2:
        raise ValueError(f"pairwise tests need at least 2 models, got {models}")
    rows = []
    for a, b in combinations(models, 2):
        if method == "bootstrap":
            if points is None or observed is None:
                raise ValueError("the bootstrap over points needs each model's out-of-fold predictions")
            p = bootstrap_rmse_test(observed, points[a], points[b], n_samples, seed)
        else:
            p = fold_test(fold_scores[a].to_numpy(), fold_scores[b].to_numpy(), method)
        mean_a, mean_b = float(fold_scores[a].mean()), float(fold_scores[b].mean())
        rows.append({"a": a, "b": b, "mean_a": mean_a, "mean_b": mean_b, "diff": mean_a - mean_b, "p": p})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p"].to_numpy())
    table["significant"] = table["p_holm"] < alpha
    return table
