"""Chemometric preprocessing of spectra: quantity conversion, resampling, SNV, Savitzky-Golay.

Each step works on a block of spectra (scans, points) and its ascending axis; `preprocess` runs
a `PreprocessConfig` chain in order, and the chain is stored with every model that used it.

- absorbance A = log10(1 / R), reflectance R = 10^-A (R as a fraction in (0, 1]);
- resampling: linear interpolation onto ``start, start + step, ..., stop``; the grid must lie in the
  measured range (no extrapolation);
- SNV: (x - mean(x)) / std(x) per spectrum, sample standard deviation (ddof 1, as prospectr);
- Savitzky-Golay: `scipy.signal.savgol_filter` along the axis, ``delta`` the grid spacing, so a
  derivative is per axis unit; the axis must be regular (resample first).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from soilnet.spectra.config import PreprocessConfig, QuantityStep, ResampleStep, SavGolStep, SNVStep
from soilnet.spectra.library import SpectralSet

#: Relative tolerance of a regular axis and of a grid end against the measured range.
TOLERANCE = 1e-6


def to_absorbance(values: np.ndarray) -> np.ndarray:
    """Absorbance log10(1 / R) of reflectance fractions; R <= 0 or above 1.5 (percent?) is an error."""
    if np.any(values <= 0):
        raise ValueError(f"reflectance must be positive for log10(1/R); {int((values <= 0).sum())} value(s) are <= 0")
    if np.any(values > 1.5):
        raise ValueError(f"reflectance must be a fraction; max {values.max():g} looks like percent (divide by 100)")
    return -np.log10(values)


def to_reflectance(values: np.ndarray) -> np.ndarray:
    """Reflectance 10^-A of absorbance values."""
    return np.power(10.0, -values)


def regular_grid(axis: np.ndarray, step: ResampleStep) -> np.ndarray:
    """The grid of a resampling step; None ends take the measured range; ends outside it are an error."""
    start = axis[0] if step.start is None else step.start
    stop = axis[-1] if step.stop is None else step.stop
    slack = TOLERANCE * max(abs(axis[-1]), 1.0)
    if start < axis[0] - slack or stop > axis[-1] + slack:
        raise ValueError(f"resample grid {start:g}-{stop:g} lies outside the measured range {axis[0]:g}-{axis[-1]:g}")
    count = int(np.floor((stop - start) / step.step + TOLERANCE)) + 1
    return start + step.step * np.arange(count)


def resample(values: np.ndarray, axis: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of each spectrum (row) from `axis` onto `grid` (both ascending)."""
    out = np.empty((values.shape[0], grid.size), dtype=np.float64)
    for row in range(values.shape[0]):
        out[row] = np.interp(grid, axis, values[row])
    return out


def snv(values: np.ndarray) -> np.ndarray:
    """Standard normal variate of each spectrum (row); a flat spectrum is an error."""
    mean = values.mean(axis=1, keepdims=True)
    std = values.std(axis=1, ddof=1, keepdims=True)
    flat = np.flatnonzero(std[:, 0] == 0)
    if flat.size:
        raise ValueError(f"SNV of a flat spectrum (row {flat[0]}): its standard deviation is 0")
    return (values - mean) / std


def spacing(axis: np.ndarray) -> float:
    """The step of a regular axis; an irregular one is an error (resample first)."""
    steps = np.diff(axis)
    if not np.allclose(steps, steps[0], rtol=TOLERANCE * 1e3, atol=0):
        raise ValueError("Savitzky-Golay needs a regular axis: put a resample step before it")
    return float(steps[0])


def savgol(values: np.ndarray, axis: np.ndarray, step: SavGolStep) -> np.ndarray:
    """Savitzky-Golay smoothing or derivative along each spectrum (``mode='interp'`` at the ends)."""
    if step.window > axis.size:
        raise ValueError(f"savgol window {step.window} is longer than the spectrum ({axis.size} points)")
    return savgol_filter(values, step.window, step.polyorder, deriv=step.deriv, delta=spacing(axis), axis=1)


def preprocess(
    values: np.ndarray, axis: np.ndarray, quantity: str, chain: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray, str]:
    """(values, axis, quantity) after the steps of `chain`, in order, on float64."""
    out = np.asarray(values, dtype=np.float64)
    axis = np.asarray(axis, dtype=np.float64)
    for step in chain.steps:
        if isinstance(step, QuantityStep):
            if step.kind != quantity:
                out = to_absorbance(out) if step.kind == "absorbance" else to_reflectance(out)
                quantity = step.kind
        elif isinstance(step, ResampleStep):
            grid = regular_grid(axis, step)
            out, axis = resample(out, axis, grid), grid
        elif isinstance(step, SNVStep):
            out = snv(out)
        elif isinstance(step, SavGolStep):
            out = savgol(out, axis, step)
    return out, axis, quantity


def preprocess_set(spectra: SpectralSet, chain: PreprocessConfig) -> SpectralSet:
    """A `SpectralSet` after the chain (same scans, new values and axis)."""
    values, axis, quantity = preprocess(spectra.values, spectra.axis, spectra.quantity, chain)
    return spectra.with_values(values, axis, quantity)
