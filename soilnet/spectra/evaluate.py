"""The comparison of spectral property models on the same folds and metrics as the map models.

Wide tables give one spectrum per scan; scans are averaged per sample (as OSSL does) and the
sample's lab values are taken from its first row. Models (see `soilnet.spectra.downstream`):

- ``plsr``: PLSR on MIR preprocessed with the configured chain (the baseline);
- ``ossl_cubist``: SNV -> PCA -> Cubist on resampled absorbance;
- ``rf_latent`` / ``mlp_latent``: on the VAE's latent means (the VAE never saw a label);
- with paired NIR and a converter, on the labelled paired samples: ``plsr_mir_paired`` (the MIR
  reference on those samples), ``plsr_nir``, ``plsr_converted_nir`` (PLSR on NIR converted to MIR)
  and ``mlp_latent_nir`` (the MLP on the NIR encoder's latents in the MIR latent space).

Every model is cross-validated with `soilnet.evaluation.baselines.cross_validate` on the folds of
`soilnet.spectra.folds` and scored with `soilnet.evaluation.metrics`. The last line of the report
is ``SPECTRA: embed_rmse=E plsr_rmse=P ratio=E/P (target: ratio <= 1.0)``, E the mean fold RMSE
of the configured headline embedding model (fixed in advance, not the best of several).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from soilnet.evaluation.baselines import cross_validate
from soilnet.evaluation.metrics import format_comparison, summarise_folds
from soilnet.spectra.config import PreprocessConfig, SpectraConfig
from soilnet.spectra.downstream import blas_threads, model_for
from soilnet.spectra.export import SpectraSpec, prepare
from soilnet.spectra.folds import sample_folds
from soilnet.spectra.ingest import IngestReport, parse_table
from soilnet.spectra.library import SpectralSet
from soilnet.spectra.preprocess import preprocess_set
from soilnet.spectra.pretrain import as_tensor
from soilnet.spectra.vae import SpectraConverter, SpectralVAE

log = logging.getLogger(__name__)


@dataclass
class Samples:
    """Repeat-averaged spectra of a wide table's samples and each sample's first-row attributes."""

    ids: np.ndarray
    spectra: SpectralSet
    attributes: pd.DataFrame
    report: IngestReport


@dataclass
class SpectraComparison:
    """Cross-validated spectral models: per-fold metrics, summary, printed table and the SPECTRA line."""

    per_fold: pd.DataFrame
    summary: pd.DataFrame
    table: str
    line: str
    fold_kind: str
    n_samples: int
    predictions: dict[str, pd.Series]


def read_samples(
    table: pd.DataFrame, where: str, prefix: str | None, id_column: str = "id", **meta: str | None
) -> Samples:
    """The samples of a wide table: complete scans (gap rows reported by the ingest parser) and attributes.

    `meta` (unit, fidelity, quantity) overrides what the parser would infer from the column names.
    """
    spectra, report = parse_table(table, where, prefix=prefix, id_column=id_column, **meta)
    spectral = set(spectra_columns(table, report))
    attributes = table.loc[:, [c for c in table.columns if c not in spectral]].copy()
    attributes[id_column] = attributes[id_column].astype(str)
    attributes = attributes.groupby(id_column, sort=False).first()
    ids = spectra.sample_ids.astype(str)
    return Samples(ids, spectra, attributes.loc[ids].reset_index(), report)


def spectra_columns(table: pd.DataFrame, report: IngestReport) -> list[str]:
    """The spectral columns of a table parsed with `report`'s prefix."""
    return [str(c) for c in table.columns if str(c).startswith(report.prefix)]


def sample_means(spectra: SpectralSet, ids: np.ndarray) -> np.ndarray:
    """Repeat-averaged spectra of `ids`, in that order."""
    found, means = spectra.select(ids).mean_by_sample()
    position = pd.Index(found).get_indexer(np.asarray(ids, dtype=str))
    return means[position]


def resampled_absorbance(chain: PreprocessConfig) -> PreprocessConfig:
    """The quantity and resampling steps of a chain (OSSL's recipe does its own SNV)."""
    return PreprocessConfig(steps=[s for s in chain.steps if s.kind in ("absorbance", "reflectance", "resample")])


def mir_features(
    samples: Samples, ids: np.ndarray, cfg: SpectraConfig, vae: SpectralVAE, vae_spec
) -> dict[str, np.ndarray]:
    """Inputs of the MIR models for the samples `ids`: preprocessed spectra, absorbance, VAE latents."""
    latents = vae.embed(as_tensor(sample_means(prepare(samples.spectra, vae_spec), ids))).numpy()
    return {
        "plsr": sample_means(preprocess_set(samples.spectra, cfg.mir), ids),
        "ossl_cubist": sample_means(preprocess_set(samples.spectra, resampled_absorbance(cfg.mir)), ids),
        "rf_latent": latents,
        "mlp_latent": latents,
    }


def nir_features(
    mir: dict[str, np.ndarray],
    rows: np.ndarray,
    nir: Samples,
    ids: np.ndarray,
    cfg: SpectraConfig,
    converter: SpectraConverter,
    converter_spec: SpectraSpec,
) -> dict[str, np.ndarray]:
    """Inputs of the paired-subset models: MIR reference rows, NIR, converted NIR and NIR latents."""
    prepared = as_tensor(sample_means(prepare(nir.spectra, converter_spec), ids))
    out = converter(prepared)
    return {
        "plsr_mir_paired": mir["plsr"][rows],
        "plsr_nir": sample_means(preprocess_set(nir.spectra, cfg.nir), ids),
        "plsr_converted_nir": out["recon"].detach().numpy(),
        "mlp_latent_nir": out["mean"].detach().numpy(),
    }


def cross_validate_all(
    features: dict[str, np.ndarray], targets: np.ndarray, folds: np.ndarray, ids: np.ndarray, cfg: SpectraConfig
) -> tuple[list[pd.DataFrame], dict[str, pd.Series]]:
    """Per-fold metrics and out-of-fold predictions (by sample id) of every model."""
    tables, predictions = [], {}
    limit = None if cfg.downstream.n_jobs == -1 else cfg.downstream.n_jobs
    with threadpool_limits(limits=limit), warnings.catch_warnings():
        # cubist fits on a DataFrame of its own and predicts arrays: scikit-learn's feature-name warning is noise
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        for name, matrix in features.items():
            estimator = model_for(name, cfg.downstream, matrix.shape[0], matrix.shape[1])
            with threadpool_limits(limits=blas_threads(name, cfg.downstream.n_jobs), user_api="blas"):
                result = cross_validate(estimator, matrix, targets, folds, name)
            tables.append(result.per_fold)
            predictions[name] = pd.Series(result.predictions, index=ids, name=name)
            log.info("%s: mean fold RMSE %.4g", name, result.per_fold["rmse"].mean())
    return tables, predictions


def spectra_line(summary: pd.DataFrame, headline: str) -> str:
    """``SPECTRA: embed_rmse=E plsr_rmse=P ratio=E/P (target: ratio <= 1.0)`` from the summary's mean fold RMSE."""
    rmse = summary[summary["metric"] == "rmse"].set_index("model")["mean"]
    embed, base = float(rmse[headline]), float(rmse["plsr"])
    return f"SPECTRA: embed_rmse={embed:.4g} plsr_rmse={base:.4g} ratio={embed / base:.3f} (target: ratio <= 1.0)"


def labelled_rows(samples: Samples, target: str) -> np.ndarray:
    """Rows of the samples with a finite target value; a missing target column is an error."""
    if target not in samples.attributes.columns:
        raise ValueError(f"target column {target!r} missing (columns: {list(samples.attributes.columns)[:12]})")
    values = pd.to_numeric(samples.attributes[target], errors="coerce").to_numpy(dtype=np.float64)
    return np.flatnonzero(np.isfinite(values))


def paired_subset(ids: np.ndarray, folds: np.ndarray, nir: Samples) -> np.ndarray:
    """Rows of `ids` that also have NIR, if every fold holds at least 2 of them (else none, with a warning)."""
    rows = np.flatnonzero(np.isin(ids, nir.ids))
    counts = np.bincount(folds[rows], minlength=folds.max() + 1)
    if rows.size == 0 or counts.min() < 2:
        log.warning("paired NIR subset: fold sizes %s; models on converted spectra skipped", counts.tolist())
        return np.array([], dtype=np.int64)
    return rows


def evaluate_spectra(
    samples: Samples,
    target: str,
    cfg: SpectraConfig,
    vae: tuple[SpectralVAE, SpectraSpec],
    group: str | None = None,
    nir: Samples | None = None,
    converter: tuple[SpectraConverter, SpectraSpec] | None = None,
) -> SpectraComparison:
    """Cross-validate every model on the labelled samples; returns the comparison and the SPECTRA line.

    `vae` and `converter` are (module, input spectra spec of its card) pairs.
    """
    rows = labelled_rows(samples, target)
    if rows.size < cfg.downstream.k * 2:
        raise ValueError(
            f"{rows.size} samples have a {target!r} value; {cfg.downstream.k} folds need {2 * cfg.downstream.k}"
        )
    labelled = samples.attributes.iloc[rows].reset_index(drop=True)
    ids = labelled["id"].astype(str).to_numpy() if "id" in labelled else samples.ids[rows]
    targets = pd.to_numeric(labelled[target]).to_numpy(dtype=np.float64)
    folds, kind = sample_folds(labelled, cfg.downstream.k, cfg.downstream.seed, group)
    features = mir_features(samples, ids, cfg, *vae)
    tables, predictions = cross_validate_all(features, targets, folds, ids, cfg)
    if nir is not None and converter is not None:
        paired = paired_subset(ids, folds, nir)
        if paired.size:
            extra = nir_features(features, paired, nir, ids[paired], cfg, *converter)
            more, more_predictions = cross_validate_all(extra, targets[paired], folds[paired], ids[paired], cfg)
            tables += more
            predictions.update(more_predictions)
    per_fold = pd.concat(tables, ignore_index=True)
    summary = summarise_folds(per_fold)
    line = spectra_line(summary, cfg.downstream.headline)
    header = f"{target}: {rows.size} samples, {kind} {cfg.downstream.k}-fold CV, metric mean ± std over folds"
    table = "\n".join([header, format_comparison(summary), line])
    return SpectraComparison(per_fold, summary, table, line, kind, int(rows.size), predictions)
