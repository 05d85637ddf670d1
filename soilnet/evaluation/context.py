"""Multi-scale context features of the fair tree baselines: per band mean and std over centred windows.

Digital soil mapping gives forests the context a deep model sees through focal statistics: for each
band, the mean and standard deviation over square windows of several sizes (3, 7, 15 and 31 px by
default) centred on the point's pixel. They are computed here from the very windows the models read
(N, C, P, P), so a forest and a network see the same pixels. Nodata pixels (NaN) are left out of
each statistic; a window with no valid pixel gives NaN, imputed per fold by the baseline.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_WINDOWS: tuple[int, ...] = (3, 7, 15, 31)
"""Window sides in pixels of the fair baselines (odd: centred on the point's pixel)."""


def check_windows(windows: Sequence[int], patch_px: int) -> list[int]:
    """The window sides as ints, each odd, at least 1 and no larger than the patch (errors name the window)."""
    sides = [int(w) for w in windows]
    if not sides:
        raise ValueError("context windows: at least one window side is needed")
    for side in sides:
        if side < 1 or side % 2 == 0:
            raise ValueError(f"context window {side} px: sides must be odd and >= 1 (centred on the point)")
        if side > patch_px:
            raise ValueError(f"context window {side} px does not fit the {patch_px} px windows the models read")
    return sides


def context_features(images: ArrayLike, windows: Sequence[int] = DEFAULT_WINDOWS) -> NDArray[np.float64]:
    """Per band mean and std over each centred window: (N, C, P, P) -> (N, 2 C W).

    Columns are grouped by window, then statistic, then band: for the first window the C means and
    the C stds, then the next window. The window of side w covers rows and columns
    ``[P // 2 - w // 2, P // 2 + w // 2]``, centred on the point's pixel (row and column P // 2).
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 4 or arr.shape[2] != arr.shape[3]:
        raise ValueError(f"images must be (N, C, P, P), got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError(f"images hold infinite values, first at index {tuple(np.argwhere(np.isinf(arr))[0])}")
    centre = arr.shape[2] // 2
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN, imputed per fold
        for side in check_windows(windows, arr.shape[2]):
            lo, hi = centre - side // 2, centre + side // 2 + 1
            window = arr[:, :, lo:hi, lo:hi].reshape(arr.shape[0], arr.shape[1], -1)
            parts += [np.nanmean(window, axis=2), np.nanstd(window, axis=2)]
    return np.concatenate(parts, axis=1)


def context_feature_names(bands: Sequence[str], windows: Sequence[int] = DEFAULT_WINDOWS) -> list[str]:
    """Column names of `context_features`: ``<band>_mean<w>`` and ``<band>_std<w>`` in its column order."""
    return [f"{band}_{stat}{side}" for side in windows for stat in ("mean", "std") for band in bands]
