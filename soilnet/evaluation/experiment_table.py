"""The table of an experiment: metric mean ± std over folds and the spread over repeated seeds.

The per-fold frame of an experiment is the comparison table's (C3: ``model``, ``target``, ``fold``,
``n`` and one column per metric, `soilnet.evaluation.metrics.per_fold_metrics`) with a ``seed``
column: one row per model (experiment arm), seed and fold. For each model and metric:

- ``mean``: over every seed and fold;
- ``fold_std``: the sample std over folds of the seed-averaged fold scores (the paper's ± over folds);
- ``seed_std``: the sample std over seeds of each seed's mean over folds (NaN with one seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from soilnet.evaluation.metrics import metric_columns

PAPER_METRICS: tuple[str, ...] = ("rmse", "r2", "mae", "ccc")
"""The metrics of the SoilNet papers' tables, in their order."""

KEYS: tuple[str, ...] = ("target", "model", "seed", "fold")


def _checked(per_fold: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("model", "seed", "fold") if c not in per_fold.columns]
    if missing:
        raise ValueError(f"experiment per-fold table lacks column(s) {missing}")
    if per_fold.empty:
        raise ValueError("experiment per-fold table is empty")
    table = per_fold.assign(target=per_fold["target"].fillna("").astype(str) if "target" in per_fold else "")
    repeated = table.duplicated(list(KEYS))
    if repeated.any():
        row = table.loc[repeated].iloc[0]
        where = f"model {row['model']!r}, seed {row['seed']}, fold {row['fold']}"
        raise ValueError(f"experiment per-fold table repeats {where}")
    return table


def seed_fold_summary(per_fold: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, model, metric): ``mean``, ``fold_std``, ``seed_std``, ``n_folds``, ``n_seeds``.

    Models and targets keep their order of first appearance; metrics follow `metric_columns`.
    """
    table = _checked(per_fold)
    metrics = [m for m in metric_columns(table.drop(columns=["seed"])) if table[m].notna().any()]
    long = table.melt(id_vars=list(KEYS), value_vars=metrics, var_name="metric").dropna(subset=["value"])
    by_fold = long.groupby(["target", "model", "metric", "fold"], sort=False)["value"].mean()
    by_seed = long.groupby(["target", "model", "metric", "seed"], sort=False)["value"].mean()
    keys = ["target", "model", "metric"]
    summary = by_fold.groupby(level=keys, sort=False).agg(
        mean="mean", fold_std=lambda v: v.std(ddof=1), n_folds="count"
    )
    seeds = by_seed.groupby(level=keys, sort=False).agg(seed_std=lambda v: v.std(ddof=1), n_seeds="count")
    out = summary.join(seeds).reset_index()
    out["metric"] = pd.Categorical(out["metric"], categories=metrics, ordered=True)
    for column in ("target", "model"):
        out[column] = pd.Categorical(out[column], categories=list(dict.fromkeys(table[column])), ordered=True)
    out = out.sort_values(keys).reset_index(drop=True)
    return out.astype({"target": str, "model": str, "metric": str})


def fold_scores(per_fold: pd.DataFrame, metric: str = "rmse", target: str | None = None) -> pd.DataFrame:
    """Seed-averaged scores of one metric: one row per fold, one column per model (the paired tests' input).

    Only folds every model was scored on are kept.
    """
    table = _checked(per_fold)
    targets = list(dict.fromkeys(table["target"]))
    if target is None and len(targets) > 1:
        raise ValueError(f"the experiment holds several targets {targets}: name the one to test")
    target = targets[0] if target is None else target
    if metric not in table.columns:
        raise ValueError(f"experiment per-fold table has no metric {metric!r}")
    block = table[table["target"] == target]
    wide = block.groupby(["fold", "model"], sort=False)[metric].mean().unstack("model")
    return wide[list(dict.fromkeys(block["model"]))].dropna().sort_index()


def _cell(mean: float, fold_std: float, seed_std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return ""
    text = f"{mean:.{digits}f} ± {fold_std:.{digits}f}" if np.isfinite(fold_std) else f"{mean:.{digits}f}"
    return f"{text} [{seed_std:.{digits}f}]" if np.isfinite(seed_std) else text


def format_experiment(
    summary: pd.DataFrame,
    inputs: Mapping[str, str],
    metrics: Sequence[str] = PAPER_METRICS,
    digits: int = 3,
) -> str:
    """The paper-layout table: one row per model, its inputs, then ``mean ± fold std [seed std]`` per metric.

    `inputs` says which features each model saw (a row without an entry shows an empty cell). One
    block per target; a footnote explains the cells.
    """
    blocks = []
    for target, block in summary.groupby("target", sort=False):
        shown = [m for m in metrics if m in set(block["metric"])]
        rows = []
        for model, part in block.groupby("model", sort=False):
            by_metric = part.set_index("metric")
            cells = [
                _cell(*by_metric.loc[m, ["mean", "fold_std", "seed_std"]].astype(float), digits)
                if m in by_metric.index
                else ""
                for m in shown
            ]
            rows.append([str(model), inputs.get(str(model), ""), *cells])
        header = ["model", "inputs", *shown]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in [header, ["-" * w for w in widths], *rows]
        ]
        folds, seeds = int(block["n_folds"].max()), int(block["n_seeds"].max())
        note = (
            f"mean ± std over {folds} folds [std over {seeds} seeds]"
            if seeds > 1
            else (f"mean ± std over {folds} folds (one seed: no spread over seeds)")
        )
        blocks.append("\n".join([*([f"target: {target}"] if target else []), *lines, note]))
    return "\n\n".join(blocks)
