"""Cross-validation folds of spectral samples: spatial when coordinates exist, else grouped or random.

Lab spectra often come without usable coordinates: then samples are split at random (K-fold,
shuffled), or by a group column (site, profile, project) so that samples of one group never sit
on both sides of a split. With ``x`` / ``y`` (or ``lon`` / ``lat``) the spatial folds of the map
models are used (`soilnet.data.folds.assign_folds`), so spectral and map models are scored alike.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold

from soilnet.data.folds import FoldConfig, assign_folds

log = logging.getLogger(__name__)

FoldKind = Literal["spatial", "grouped", "random"]


def coordinate_columns(samples: pd.DataFrame) -> tuple[str, str] | None:
    """``("x", "y")`` or ``("lon", "lat")`` if the table has them, finite on every row; else None."""
    for pair in (("x", "y"), ("lon", "lat")):
        if all(c in samples.columns for c in pair):
            values = samples[list(pair)].to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isfinite(values).all():
                return pair
    return None


def sample_folds(samples: pd.DataFrame, k: int, seed: int, group: str | None = None) -> tuple[np.ndarray, FoldKind]:
    """(fold id per row, kind): spatial folds if coordinates exist, else grouped by `group`, else random."""
    if len(samples) < k:
        raise ValueError(f"{k} folds need at least {k} labelled samples, got {len(samples)}")
    pair = coordinate_columns(samples)
    if pair is not None:
        folds = assign_folds(samples[pair[0]].to_numpy(), samples[pair[1]].to_numpy(), FoldConfig(k=k, seed=seed))
        return folds.astype(np.int64), "spatial"
    folds = np.empty(len(samples), dtype=np.int64)
    if group is not None:
        if group not in samples.columns:
            raise ValueError(f"group column {group!r} missing (columns: {list(samples.columns)[:10]})")
        labels = samples[group].astype(str).to_numpy()
        if np.unique(labels).size < k:
            raise ValueError(f"{k} grouped folds need at least {k} groups in {group!r}, got {np.unique(labels).size}")
        splits = GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(samples, groups=labels)
        kind: FoldKind = "grouped"
    else:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(samples)
        kind = "random"
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    log.info("%s folds (k=%d): sizes %s", kind, k, np.bincount(folds, minlength=k).tolist())
    return folds, kind
