"""The component-path PLSR against scikit-learn's grid search, and the one-candidate inner search."""

from __future__ import annotations

import numpy as np
import pytest
from cubist import Cubist
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GridSearchCV, KFold

from soilnet.spectra.config import DownstreamConfig
from soilnet.spectra.downstream import PLSRPath, blas_threads, inner_search, path_predictions


def spectra_like(seed: int, rows: int = 120, bands: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Smooth, correlated 'spectra' and a target on a few of their directions, plus noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(rows, 6))
    x = latent @ rng.normal(size=(6, bands)) + 0.3 * rng.normal(size=(rows, bands))
    y = latent[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.5 * rng.normal(size=rows)
    return x, y


def test_truncated_paths_equal_fits_with_fewer_components() -> None:
    x, y = spectra_like(0)
    full = PLSRegression(n_components=8, scale=False).fit(x, y)
    path = path_predictions(full, x)
    for k in (1, 3, 8):
        alone = PLSRegression(n_components=k, scale=False).fit(x, y).predict(x).ravel()
        np.testing.assert_allclose(path[:, k - 1], alone, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_picks_what_the_grid_search_picks(seed: int) -> None:
    x, y = spectra_like(seed)
    cv = KFold(n_splits=3, shuffle=True, random_state=seed)
    grid = GridSearchCV(
        PLSRegression(scale=False), {"n_components": list(range(1, 11))}, cv=cv, scoring="neg_root_mean_squared_error"
    ).fit(x, y)
    path = PLSRPath(10, cv).fit(x, y)
    assert path.n_components_ == grid.best_params_["n_components"]
    np.testing.assert_allclose(path.cv_rmse_, -grid.cv_results_["mean_test_score"], rtol=1e-7)
    np.testing.assert_allclose(path.predict(x[:7]), grid.predict(x[:7]).ravel(), rtol=1e-7)


def test_one_candidate_is_not_searched() -> None:
    cfg = DownstreamConfig(inner_folds=3)
    assert isinstance(inner_search(Cubist(), {"n_committees": [1, 5]}, cfg), GridSearchCV)
    single = inner_search(Cubist(), {"n_committees": [5]}, cfg)
    assert isinstance(single, Cubist) and single.n_committees == 5


def test_latent_mlps_fit_on_one_blas_thread() -> None:
    assert blas_threads("mlp_latent", -1) == 1 and blas_threads("mlp_latent_nir", 2) == 1
    assert blas_threads("plsr", -1) is None and blas_threads("rf_latent", 2) == 2
