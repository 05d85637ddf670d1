"""Spectrally predicted soil properties as labels of the points table, marked and with their error.

A point with spectra but no lab value of a target gets the value predicted by a model fitted on
every sample that has both. Such rows are marked in ``source`` (``<survey>+spectra:<model>``)
and carry ``<target>_error``: the model's out-of-fold RMSE on the same folds as
``soilnet spectra evaluate`` (NaN on lab rows). Training can weight them below lab values
(``finetune.spectral_label_weight``); lab values are never replaced.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from soilnet.data.points import SPECTRAL_LABEL_MARK, read_points, write_points
from soilnet.evaluation.baselines import cross_validate
from soilnet.spectra.config import SpectraConfig
from soilnet.spectra.downstream import model_for
from soilnet.spectra.evaluate import Samples, labelled_rows, resampled_absorbance, sample_means
from soilnet.spectra.folds import sample_folds
from soilnet.spectra.preprocess import preprocess_set

log = logging.getLogger(__name__)

#: Suffix of the column holding a predicted label's error (RMSE, the target's unit).
ERROR_SUFFIX = "_error"
LABEL_MODELS = ("plsr", "ossl_cubist")


def spectral_source(survey: str, model: str) -> str:
    """The ``source`` of a predicted label: the survey, the mark and the model."""
    return f"{survey}{SPECTRAL_LABEL_MARK}{model}"


def model_inputs(samples: Samples, ids: np.ndarray, model: str, cfg: SpectraConfig) -> np.ndarray:
    """The spectra of `ids` prepared for a label model (its preprocessing as in the evaluation)."""
    if model not in LABEL_MODELS:
        raise ValueError(f"label model {model!r} is not one of {list(LABEL_MODELS)}")
    chain = cfg.mir if model == "plsr" else resampled_absorbance(cfg.mir)
    return sample_means(preprocess_set(samples.spectra, chain), ids)


def label_points(points_url: str, samples: Samples, target: str, model: str, cfg: SpectraConfig) -> dict[str, object]:
    """Fill missing `target` values of the points table at `points_url` from spectra; returns counts."""
    points, epsg = read_points(points_url)
    rows = labelled_rows(samples, target)
    known = samples.attributes.iloc[rows].reset_index(drop=True)
    ids = known["id"].astype(str).to_numpy()
    targets = pd.to_numeric(known[target]).to_numpy(dtype=np.float64)
    folds, kind = sample_folds(known, cfg.downstream.k, cfg.downstream.seed)
    features = model_inputs(samples, ids, model, cfg)
    estimator = model_for(model, cfg.downstream, *features.shape)
    scored = cross_validate(estimator, features, targets, folds, model)
    error = float(np.sqrt(np.mean((scored.predictions - targets) ** 2)))
    fitted = estimator.fit(features, targets)
    if target not in points.columns:
        points[target] = np.nan
    error_column = target + ERROR_SUFFIX
    if error_column not in points.columns:
        points[error_column] = np.nan
    lab = pd.to_numeric(points[target], errors="coerce").to_numpy(dtype=np.float64)
    ids_with_spectra = set(samples.ids.tolist())
    open_rows = np.flatnonzero(~np.isfinite(lab) & points["id"].astype(str).isin(ids_with_spectra).to_numpy())
    if open_rows.size:
        open_ids = points["id"].astype(str).to_numpy()[open_rows]
        predicted = np.asarray(fitted.predict(model_inputs(samples, open_ids, model, cfg)), dtype=np.float64).ravel()
        points.loc[points.index[open_rows], target] = predicted
        points.loc[points.index[open_rows], error_column] = error
        sources = points["source"].astype(str).to_numpy()[open_rows]
        points.loc[points.index[open_rows], "source"] = [spectral_source(s, model) for s in sources]
    write_points(points, points_url, epsg, overwrite=True)
    log.info(
        "%s: %d %s labels predicted by %s (out-of-fold RMSE %.4g)", points_url, open_rows.size, target, model, error
    )
    return {
        "model": model,
        "labels predicted": int(open_rows.size),
        "lab values kept": int(np.isfinite(lab).sum()),
        f"error ({kind} {cfg.downstream.k}-fold RMSE)": f"{error:.4g}",
        "error column": error_column,
        "source mark": f"<survey>{SPECTRAL_LABEL_MARK}{model}",
    }
