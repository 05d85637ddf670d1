"""Preprocessing against hand-worked cases: quantities, resampling, SNV, Savitzky-Golay, chains."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pydantic import ValidationError

from soilnet.spectra.config import PreprocessConfig, QuantityStep, ResampleStep, SavGolStep, SNVStep
from soilnet.spectra.preprocess import preprocess, regular_grid, resample, savgol, snv, to_absorbance, to_reflectance


def test_absorbance_and_reflectance_by_hand() -> None:
    # log10(1 / 0.1) = 1, log10(1 / 1) = 0, log10(1 / 0.01) = 2
    assert to_absorbance(np.array([[0.1, 1.0, 0.01]])) == pytest.approx(np.array([[1.0, 0.0, 2.0]]))
    # 10^-0.30103 = 0.5
    assert to_reflectance(np.array([[0.30103, 2.0]])) == pytest.approx(np.array([[0.5, 0.01]]), rel=1e-5)


def test_absorbance_refuses_non_positive_and_percent_reflectance() -> None:
    with pytest.raises(ValueError, match="<= 0"):
        to_absorbance(np.array([[0.5, 0.0]]))
    with pytest.raises(ValueError, match="percent"):
        to_absorbance(np.array([[45.0, 50.0]]))


def test_resample_linear_by_hand() -> None:
    axis = np.array([600.0, 604.0, 608.0])
    values = np.array([[0.0, 4.0, 0.0]])
    grid = regular_grid(axis, ResampleStep(start=600, stop=608, step=2))
    assert grid.tolist() == [600.0, 602.0, 604.0, 606.0, 608.0]
    # halfway between 0 and 4 is 2; halfway between 4 and 0 is 2
    assert resample(values, axis, grid).tolist() == [[0.0, 2.0, 4.0, 2.0, 0.0]]


def test_resample_default_ends_and_refused_extrapolation() -> None:
    axis = np.array([1350.0, 1351.5, 1353.0, 1354.5])
    assert regular_grid(axis, ResampleStep(step=1.5)).tolist() == axis.tolist()
    with pytest.raises(ValueError, match=re.escape("outside the measured range 1350-1354.5")):
        regular_grid(axis, ResampleStep(start=1340, stop=1354, step=2))


def test_snv_by_hand() -> None:
    # mean 2, sample std 1 -> [-1, 0, 1]; mean 4, sample std 2 -> [-1, 0, 1]
    out = snv(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]))
    assert out == pytest.approx(np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="flat spectrum \\(row 1\\)"):
        snv(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))


def test_savgol_smoothing_keeps_a_quadratic_and_derivative_is_per_axis_unit() -> None:
    axis = np.arange(0.0, 40.0, 2.0)  # step 2 (cm-1)
    values = (axis**2)[None, :]
    smooth = savgol(values, axis, SavGolStep(window=5, polyorder=2))
    assert smooth == pytest.approx(values)  # a quadratic is its own least-squares quadratic fit
    first = savgol(values, axis, SavGolStep(window=5, polyorder=2, deriv=1))
    assert first[0, 5:15] == pytest.approx(2.0 * axis[5:15])  # d(x^2)/dx = 2x, in axis units
    second = savgol(values, axis, SavGolStep(window=5, polyorder=2, deriv=2))
    assert second[0, 5:15] == pytest.approx(np.full(10, 2.0))


def test_savgol_window_of_five_averages_a_spike_by_hand() -> None:
    # SG quadratic, window 5, weights (-3, 12, 17, 12, -3) / 35: the centre of a unit spike becomes 17/35
    axis = np.arange(9.0)
    spike = np.zeros((1, 9))
    spike[0, 4] = 1.0
    out = savgol(spike, axis, SavGolStep(window=5, polyorder=2))
    assert out[0, 2:7] == pytest.approx(np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0)


def test_savgol_needs_a_regular_axis_and_valid_settings() -> None:
    with pytest.raises(ValueError, match="regular axis"):
        savgol(np.ones((1, 6)) * np.arange(6), np.array([0.0, 1, 2, 4, 5, 6]), SavGolStep(window=3, polyorder=1))
    with pytest.raises(ValidationError, match="odd"):
        SavGolStep(window=4)
    with pytest.raises(ValidationError, match="exceeds polyorder"):
        SavGolStep(window=5, polyorder=1, deriv=2)


def test_chain_runs_in_order_and_reports_axis_and_quantity() -> None:
    axis = np.array([1000.0, 1002.0, 1004.0, 1006.0])
    reflectance = np.array([[0.1, 0.01, 0.1, 0.01]])  # absorbance 1, 2, 1, 2
    chain = PreprocessConfig(
        steps=[QuantityStep(kind="absorbance"), ResampleStep(start=1000, stop=1004, step=1), SNVStep()]
    )
    values, grid, quantity = preprocess(reflectance, axis, "reflectance", chain)
    assert quantity == "absorbance"
    assert grid.tolist() == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    # absorbance on the grid: 1, 1.5, 2, 1.5, 1 -> mean 1.4; squared deviations .16 .01 .36 .01 .16 -> std sqrt(.7/4)
    expected = (np.array([1.0, 1.5, 2.0, 1.5, 1.0]) - 1.4) / np.sqrt(0.175)
    assert values[0] == pytest.approx(expected)


def test_chain_from_yaml_like_dicts() -> None:
    chain = PreprocessConfig.model_validate(
        {"steps": [{"kind": "resample", "step": 4}, {"kind": "savgol", "window": 11, "deriv": 1}, {"kind": "snv"}]}
    )
    assert [s.kind for s in chain.steps] == ["resample", "savgol", "snv"]
    with pytest.raises(ValidationError):
        PreprocessConfig.model_validate({"steps": [{"kind": "msc"}]})
