"""Property models on spectra, converted spectra and latent embeddings (scikit-learn estimators).

- PLSR, the chemometrics standard and our baseline: `PLSRegression` on preprocessed spectra,
  its number of components chosen by an inner K-fold CV on the training rows only.
- OSSL's recipe: SNV -> PCA (120 components, fewer if the training rows or points are fewer) ->
  Cubist, committees chosen by inner CV (OSSL also log1p-transforms skewed targets; not done here,
  the target is modelled as given).
- A random forest and an MLP (inputs and target standardised, early stopping) on VAE latent means.

Every estimator is refitted per outer fold by `soilnet.evaluation.baselines.cross_validate`, so
the inner searches never see the test fold.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from soilnet.spectra.config import DownstreamConfig
from soilnet.spectra.preprocess import snv


def inner_rows(n_rows: int, outer_folds: int, inner_folds: int) -> int:
    """Rows an inner-CV fit sees: the outer training share of `n_rows`, less one inner fold."""
    outer = n_rows - -(-n_rows // outer_folds)
    return outer - -(-outer // inner_folds)


def inner_search(estimator: BaseEstimator, grid: dict[str, list], cfg: DownstreamConfig) -> GridSearchCV:
    """A grid search by RMSE over shuffled inner K folds (seeded), refitted on all training rows."""
    cv = KFold(n_splits=cfg.inner_folds, shuffle=True, random_state=cfg.seed)
    return GridSearchCV(estimator, grid, cv=cv, scoring="neg_root_mean_squared_error", refit=True)


def plsr(cfg: DownstreamConfig, n_rows: int, n_points: int) -> GridSearchCV:
    """PLSR with 1..max components (capped by the inner-fit rows and the points) chosen by inner CV."""
    top = max(1, min(cfg.plsr_max_components, n_points, inner_rows(n_rows, cfg.k, cfg.inner_folds) - 1))
    return inner_search(PLSRegression(scale=False), {"n_components": list(range(1, top + 1))}, cfg)


def ossl_cubist(cfg: DownstreamConfig, n_rows: int, n_points: int) -> Pipeline:
    """OSSL's SNV -> PCA -> Cubist, committees chosen by inner CV."""
    from cubist import Cubist

    components = max(1, min(cfg.pca_components, n_points, inner_rows(n_rows, cfg.k, cfg.inner_folds) - 1))
    return Pipeline(
        [
            ("snv", FunctionTransformer(snv)),
            ("pca", PCA(n_components=components, random_state=cfg.seed)),
            ("cubist", inner_search(Cubist(random_state=cfg.seed), {"n_committees": cfg.cubist_committees}, cfg)),
        ]
    )


def latent_forest(cfg: DownstreamConfig) -> RandomForestRegressor:
    """A random forest on latent embeddings."""
    return RandomForestRegressor(n_estimators=cfg.rf_trees, random_state=cfg.seed, n_jobs=cfg.n_jobs)


def latent_mlp(cfg: DownstreamConfig) -> TransformedTargetRegressor:
    """An MLP on standardised latent embeddings with a standardised target."""
    network = MLPRegressor(
        hidden_layer_sizes=tuple(cfg.mlp_hidden),
        alpha=1e-3,
        max_iter=2000,
        early_stopping=True,
        n_iter_no_change=20,
        random_state=cfg.seed,
    )
    return TransformedTargetRegressor(
        Pipeline([("scale", StandardScaler()), ("mlp", network)]), transformer=StandardScaler()
    )


def model_for(name: str, cfg: DownstreamConfig, n_rows: int, n_points: int) -> RegressorMixin:
    """The estimator of a model family name: plsr, ossl_cubist, rf_latent, mlp_latent."""
    if name.startswith("plsr"):
        return plsr(cfg, n_rows, n_points)
    if name.startswith("ossl_cubist"):
        return ossl_cubist(cfg, n_rows, n_points)
    if name.startswith("rf_latent"):
        return latent_forest(cfg)
    if name.startswith("mlp_latent"):
        return latent_mlp(cfg)
    raise ValueError(f"unknown spectral model {name!r}")
