"""Evaluation figures are built headless and written as PNG files."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from soilnet.evaluation import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _predictions(n: int = 60):
    rng = np.random.default_rng(0)
    y_true = rng.gamma(2.0, 10.0, n)
    y_pred = y_true + rng.normal(0.0, 3.0, n)
    x, y = rng.uniform(0, 1e5, n), rng.uniform(0, 1e5, n)
    folds = (x > 5e4).astype(int) + 2 * (y > 5e4).astype(int)
    return x, y, y_true, y_pred, folds


def _assert_png(path):
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000


def test_observed_vs_predicted_has_metrics_in_legend(tmp_path):
    _, _, y_true, y_pred, _ = _predictions()
    fig = plots.observed_vs_predicted(y_true, y_pred, target="soc_g_kg")
    assert isinstance(fig, Figure)
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    for name in ("RMSE", "MAE", "ME", "R2", "CCC", "RPIQ", "1:1", "n = 60"):
        assert name in legend
    _assert_png(plots.save_figure(fig, tmp_path / "ovp.png"))


def test_each_figure_writes_a_png(tmp_path):
    x, y, y_true, y_pred, folds = _predictions()
    figures = {
        "residuals": plots.residuals(y_true, y_pred),
        "targets": plots.target_distributions(y_true, folds),
        "map": plots.fold_error_map(x, y, y_true, y_pred, folds),
    }
    assert len(figures["residuals"].axes) == 2
    assert len(figures["map"].axes) == 2  # map and colour bar
    for name, fig in figures.items():
        _assert_png(plots.save_figure(fig, tmp_path / "sub" / f"{name}.png"))


def test_write_evaluation_plots(tmp_path):
    x, y, y_true, y_pred, folds = _predictions()
    written = plots.write_evaluation_plots(tmp_path / "plots", x, y, y_true, y_pred, folds, "soc")
    assert set(written) == {
        "observed_vs_predicted",
        "residuals",
        "target_distributions",
        "fold_error_map",
    }
    for name, url in written.items():
        assert url.endswith(f"{name}.png")
        _assert_png(url)


def test_plot_bad_input():
    x, y, y_true, y_pred, folds = _predictions()
    with pytest.raises(ValueError, match="length mismatch"):
        plots.observed_vs_predicted(y_true, y_pred[:-1])
    with pytest.raises(ValueError, match=r"fold_ids must be \(60,\) integers"):
        plots.target_distributions(y_true, folds[:10])
    with pytest.raises(ValueError, match=r"x .* and y .* must match"):
        plots.fold_error_map(x[:5], y, y_true, y_pred, folds)
    bad = y_true.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        plots.target_distributions(bad, folds)


def test_calibration_figures():
    fig = plots.reliability_diagram([0.5, 0.9], [0.48, 0.91], "soc_g_kg")
    curve = fig.axes[0].lines[1]
    np.testing.assert_allclose(curve.get_ydata(), [0.48, 0.91])
    hist = plots.di_histogram(np.array([0.1, 0.2, 0.3, 2.0]), 0.3)
    assert "75.0% within" in hist.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="same non-empty 1-D shape"):
        plots.reliability_diagram([0.5], [0.4, 0.5])
