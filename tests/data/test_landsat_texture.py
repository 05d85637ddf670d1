"""The Landsat-like texture generator: position-pure pixels, compressibility of real Landsat SR."""

from __future__ import annotations

import numpy as np
from numcodecs import Blosc

from soilnet.data.bands import BAND_NAMES
from soilnet.data.landsat_texture import compression_ratio, landsat_raw, landsat_tile


def test_any_window_cut_gives_the_same_pixels() -> None:
    tile = landsat_raw(512, 1024, 256, 256, seed=3)
    window = landsat_raw(512 + 70, 1024 + 33, 64, 64, seed=3)
    assert tile.shape == (len(BAND_NAMES), 256, 256)
    np.testing.assert_array_equal(window, tile[:, 70:134, 33:97])
    assert not np.array_equal(landsat_raw(512, 1024, 64, 64, seed=4), tile[:, :64, :64])


def test_compresses_like_real_landsat_sr() -> None:
    raw = landsat_raw(0, 0, 256, 256)
    assert 1.7 <= compression_ratio(raw) <= 2.3
    assert compression_ratio(raw, shuffle=Blosc.BITSHUFFLE) <= 2.5
    values = landsat_tile(0, 0, 64, 64)
    assert np.isfinite(values).all()
    assert values[:7].min() > 0.0 and values[:7].max() <= 1.0
