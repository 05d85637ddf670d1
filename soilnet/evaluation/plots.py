"""Evaluation figures: observed vs predicted, residuals, target distributions, error map, and of the
calibration: interval reliability diagram and DI histogram.

Figures are built with the object-oriented matplotlib API (`matplotlib.figure.Figure`, Agg
canvas), never pyplot, so they work headless, in threads and in Ray workers, and leave no
global state behind. Each function returns the Figure (``mlflow.log_figure`` takes it as is);
`save_figure` writes one as PNG to a local path or an ``s3://`` URL.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from soilnet import storage
from soilnet.evaluation.metrics import check_pair, regression_metrics

log = logging.getLogger(__name__)


def _new_figure(width: float, height: float) -> Figure:
    """A Figure attached to an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _folds(fold_ids: ArrayLike, n: int) -> NDArray[np.int64]:
    """Validated integer fold ids of length `n`."""
    folds = np.asarray(fold_ids)
    if folds.shape != (n,) or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"fold_ids must be ({n},) integers, got {folds.dtype} {folds.shape}")
    return folds.astype(np.int64)


def observed_vs_predicted(
    y_true: ArrayLike, y_pred: ArrayLike, target: str = "target", title: str | None = None
) -> Figure:
    """Scatter of predicted against observed values with the 1:1 line; metrics in the legend."""
    y, p = check_pair(y_true, y_pred)
    metrics = regression_metrics(y, p)
    label = "\n".join(f"{name.upper()} {value:.3f}" for name, value in metrics.items())
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.scatter(y, p, s=10, alpha=0.6, label=f"n = {y.size}\n{label}")
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="1:1")
    ax.set_xlabel(f"observed {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(title or f"{target}: observed vs predicted")
    return fig


def residuals(y_true: ArrayLike, y_pred: ArrayLike, target: str = "target") -> Figure:
    """Histogram of residuals (predicted - observed) and residuals against predictions."""
    y, p = check_pair(y_true, y_pred)
    resid = p - y
    fig = _new_figure(10.0, 4.0)
    hist_ax, scatter_ax = fig.subplots(1, 2)
    hist_ax.hist(resid, bins=min(50, max(10, y.size // 10)), color="tab:blue", alpha=0.8)
    hist_ax.axvline(0.0, color="black", linewidth=1)
    hist_ax.set_xlabel(f"residual (predicted - observed) {target}")
    hist_ax.set_ylabel("count")
    hist_ax.set_title(f"mean {resid.mean():.3f}, std {resid.std():.3f}")
    scatter_ax.scatter(p, resid, s=10, alpha=0.6)
    scatter_ax.axhline(0.0, color="black", linewidth=1)
    scatter_ax.set_xlabel(f"predicted {target}")
    scatter_ax.set_ylabel("residual")
    scatter_ax.set_title("residuals vs predicted")
    return fig


def target_distributions(targets: ArrayLike, fold_ids: ArrayLike, target: str = "target") -> Figure:
    """Box plots of the target per fold, with each fold's point count."""
    values = np.asarray(targets, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"targets must be a non-empty 1-D array, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"targets has NaN/infinite values, first at row {bad[0]}")
    folds = _folds(fold_ids, values.size)
    ids = np.unique(folds)
    groups = [values[folds == f] for f in ids]
    fig = _new_figure(max(5.0, 0.8 * ids.size + 2.0), 4.0)
    ax = fig.add_subplot()
    ax.boxplot(groups, tick_labels=[f"{f}\n(n={g.size})" for f, g in zip(ids, groups, strict=True)])
    ax.set_xlabel("fold")
    ax.set_ylabel(target)
    ax.set_title(f"{target} per fold")
    return fig


def fold_error_map(
    x: ArrayLike,
    y: ArrayLike,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    fold_ids: ArrayLike,
    target: str = "target",
) -> Figure:
    """Map of the points coloured by absolute error, with the fold id at each fold's centroid."""
    obs, pred = check_pair(y_true, y_pred)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != obs.shape or ys.shape != obs.shape:
        raise ValueError(f"x {xs.shape} and y {ys.shape} must match the {obs.size} predictions")
    folds = _folds(fold_ids, obs.size)
    fig = _new_figure(6.5, 5.5)
    ax = fig.add_subplot()
    points = ax.scatter(xs, ys, c=np.abs(pred - obs), s=12, cmap="viridis")
    fig.colorbar(points, ax=ax, label=f"|predicted - observed| {target}")
    for fold in np.unique(folds):
        mask = folds == fold
        ax.annotate(
            str(fold),
            (xs[mask].mean(), ys[mask].mean()),
            ha="center",
            va="center",
            fontweight="bold",
            bbox={"boxstyle": "circle", "facecolor": "white", "alpha": 0.8},
        )
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"absolute error per point, fold ids at centroids ({target})")
    return fig


def reliability_diagram(nominal: ArrayLike, observed: ArrayLike, target: str = "target") -> Figure:
    """Observed held-out coverage of the conformal intervals against their nominal level, with the 1:1 line."""
    levels = np.asarray(nominal, dtype=np.float64)
    seen = np.asarray(observed, dtype=np.float64)
    if levels.ndim != 1 or levels.shape != seen.shape or levels.size == 0:
        raise ValueError(f"nominal {levels.shape} and observed {seen.shape} must be the same non-empty 1-D shape")
    fig = _new_figure(5.0, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="black", linewidth=1, label="calibrated (1:1)")
    ax.plot(levels, seen, marker="o", label="held-out folds")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(f"{target}: interval reliability")
    return fig


def di_histogram(train_di: ArrayLike, threshold: float, title: str = "dissimilarity index") -> Figure:
    """Histogram of the cross-validated DI of the training points with the AOA threshold."""
    di = np.asarray(train_di, dtype=np.float64)
    if di.ndim != 1 or di.size == 0 or not np.isfinite(di).all():
        raise ValueError(f"train_di must be a non-empty 1-D array of finite values, got shape {di.shape}")
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.hist(di, bins=min(50, max(10, di.size // 20)), color="tab:blue", alpha=0.8)
    inside = float((di <= threshold).mean())
    ax.axvline(threshold, color="tab:red", linewidth=1.5, label=f"AOA threshold {threshold:.3f} ({inside:.1%} within)")
    ax.set_xlabel("cross-validated DI of the training points")
    ax.set_ylabel("count")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(title)
    return fig


def save_figure(fig: Figure, url: str | os.PathLike[str], dpi: int = 120) -> str:
    """Write `fig` as PNG to a local path or ``s3://`` URL; returns the resolved URL."""
    location = storage.resolve(url)
    with storage.open_file(location.url, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    log.info("wrote figure %s", location.url)
    return location.url


def write_evaluation_plots(
    out_url: str | os.PathLike[str],
    x: ArrayLike,
    y: ArrayLike,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    fold_ids: ArrayLike,
    target: str = "target",
) -> dict[str, str]:
    """Write the four evaluation figures of out-of-fold predictions under `out_url`.

    Returns their URLs by name: ``observed_vs_predicted``, ``residuals``,
    ``target_distributions``, ``fold_error_map`` (files ``<name>.png``).
    """
    figures = {
        "observed_vs_predicted": observed_vs_predicted(y_true, y_pred, target),
        "residuals": residuals(y_true, y_pred, target),
        "target_distributions": target_distributions(y_true, fold_ids, target),
        "fold_error_map": fold_error_map(x, y, y_true, y_pred, fold_ids, target),
    }
    return {name: save_figure(fig, storage.join(out_url, f"{name}.png")) for name, fig in figures.items()}
