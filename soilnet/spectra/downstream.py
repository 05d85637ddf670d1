"""Property models on spectra, converted spectra and latent embeddings (scikit-learn estimators).

- PLSR, the chemometrics standard and our baseline: `PLSRegression` on preprocessed spectra,
  its number of components chosen by an inner K-fold CV on the training rows only. `PLSRPath`
  scores every component count from one fit per inner fold: the first k components of a PLSR fit
  are those of a k-component fit, so the grid search's one fit per count is not needed.
- OSSL's recipe: SNV -> PCA (120 components, fewer if the training rows or points are fewer) ->
  Cubist, committees chosen by inner CV (OSSL also log1p-transforms skewed targets; not done here,
  the target is modelled as given).
- A random forest and an MLP (inputs and target standardised, early stopping) on VAE latent means.

Every estimator is refitted per outer fold by `soilnet.evaluation.baselines.cross_validate`, so
the inner searches never see the test fold.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
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


def inner_folds(cfg: DownstreamConfig) -> KFold:
    """The shuffled inner K folds (seeded) of every inner search."""
    return KFold(n_splits=cfg.inner_folds, shuffle=True, random_state=cfg.seed)


def inner_search(estimator: BaseEstimator, grid: dict[str, list], cfg: DownstreamConfig) -> BaseEstimator:
    """A grid search by RMSE over the inner folds, refitted on all training rows; one candidate: the estimator."""
    if all(len(values) == 1 for values in grid.values()):
        return estimator.set_params(**{name: values[0] for name, values in grid.items()})
    return GridSearchCV(estimator, grid, cv=inner_folds(cfg), scoring="neg_root_mean_squared_error", refit=True)


def path_predictions(model: PLSRegression, x: np.ndarray) -> np.ndarray:
    """Predictions (rows, components) of a fitted one-target PLSR truncated to 1, 2, ... of its components.

    With ``scale=False`` a k-component prediction is ``(x - mean) @ R[:, :k] @ Q[:, :k].T + y_mean``, R the
    x rotations and Q the y loadings; ``P.T @ W`` is upper triangular, so ``R[:, :k]`` is the rotation
    of a k-component fit.
    """
    scores = model.transform(x)  # (rows, components): (x - mean) @ R with scale=False
    return np.cumsum(scores * model.y_loadings_[0], axis=1) + model.intercept_[0]


class PLSRPath(RegressorMixin, BaseEstimator):
    """PLSR whose component count (1..max_components) minimises the mean inner-fold RMSE, then refitted.

    Selects what ``GridSearchCV(PLSRegression(scale=False), {"n_components": 1..max})`` selects (the
    smallest count among equal scores), with one fit per inner fold instead of one per count.
    """

    def __init__(self, max_components: int = 10, cv: KFold | None = None) -> None:
        self.max_components = max_components
        self.cv = cv

    def fit(self, x: ArrayLike, y: ArrayLike) -> PLSRPath:
        """Score every count on the inner folds and refit the best one on all rows."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel()
        folds = list((self.cv or KFold(5)).split(x))
        rmse = np.zeros((len(folds), self.max_components))
        for i, (train, test) in enumerate(folds):
            model = PLSRegression(n_components=self.max_components, scale=False).fit(x[train], y[train])
            errors = path_predictions(model, x[test]) - y[test, None]
            rmse[i] = np.sqrt(np.mean(errors**2, axis=0))
        self.cv_rmse_ = rmse.mean(axis=0)
        self.n_components_ = int(np.argmin(self.cv_rmse_)) + 1
        self.model_ = PLSRegression(n_components=self.n_components_, scale=False).fit(x, y)
        return self

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Predictions of the refitted model, one per row."""
        return self.model_.predict(np.asarray(x, dtype=np.float64)).ravel()


def plsr(cfg: DownstreamConfig, n_rows: int, n_points: int) -> PLSRPath:
    """PLSR with 1..max components (capped by the inner-fit rows and the points) chosen by inner CV."""
    top = max(1, min(cfg.plsr_max_components, n_points, inner_rows(n_rows, cfg.k, cfg.inner_folds) - 1))
    return PLSRPath(top, inner_folds(cfg))


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


def blas_threads(name: str, n_jobs: int) -> int | None:
    """BLAS threads while fitting a model family: one for the latent MLPs, else `n_jobs` (-1: no limit).

    An MLP's (200 x 64) products cost more in thread hand-offs than they gain: a fit on 1,650 x 16
    latents took 28.5 s of CPU with two BLAS threads and 1.45 s with one, with the same predictions.
    """
    if name.startswith("mlp_latent"):
        return 1
    return None if n_jobs == -1 else n_jobs


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
