"""Generated 14-band pixels that compress like real Landsat-8 surface reflectance.

Real 12-band int16 Landsat-8 SR compresses about 2.0x with blosc-zstd level 3 and byte shuffle;
the demo region's smooth fields compress less well (1.5x, uniform speckle on every index) and
smooth noise alone far better, so byte and request figures measured on either are off. This
generator gives the texture of an agricultural landscape at 30 m:

- parcels of ``PARCEL_PX`` px with jittered edges, each of one land-cover class (spectra of
  `soilnet.data.demo_region.SPECTRA`), a vigour of its own and a regional class mix;
- within-parcel texture (a few percent at ~6 px) and Gaussian sensor noise of ``NOISE`` reflectance;
- the five indices computed from the noisy reflectance, smooth elevation and its slope.

Values are a pure function of (seed, global pixel position): the sensor noise is drawn per
``BLOCK`` x ``BLOCK`` block of the global grid, so any window, tile or shard of the same grid gets
the same pixels however it is cut. `compression_ratio` measures what the pixels cost on storage.
"""

from __future__ import annotations

import numpy as np
from numcodecs import Blosc

from soilnet.data.bands import BAND_NAMES, band_spec
from soilnet.data.demo_region import SPECTRA, indices, slope_percent
from soilnet.data.noise import fbm, value_noise
from soilnet.data.raster_cube import encode

#: Side of the blocks the sensor noise is drawn in (any tiling aligned or not gives the same pixels).
BLOCK = 64
#: Parcel side in pixels (about 36 ha at 30 m) and the reflectance std of the sensor noise.
PARCEL_PX = 20
NOISE = 0.0003
#: Regional share of each `SPECTRA` class (tree, grass, crop, built-up, bare, water), cumulative.
_CLASS_CDF = np.cumsum([0.3, 0.25, 0.3, 0.05, 0.05, 0.05])
_SPECTRA = np.array(list(SPECTRA.values()), dtype=np.float32)  # (class, 7)


def _sensor_noise(row0: int, col0: int, height: int, width: int, seed: int) -> np.ndarray:
    """(7, h, w) standard normal noise drawn per global `BLOCK` (so independent of how the grid is cut)."""
    b_r0, b_c0 = row0 // BLOCK, col0 // BLOCK
    b_r1, b_c1 = -(-(row0 + height) // BLOCK), -(-(col0 + width) // BLOCK)
    out = np.empty((7, (b_r1 - b_r0) * BLOCK, (b_c1 - b_c0) * BLOCK), dtype=np.float32)
    for br in range(b_r0, b_r1):
        for bc in range(b_c0, b_c1):
            rng = np.random.default_rng([seed, br + (1 << 31), bc + (1 << 31)])
            y, x = (br - b_r0) * BLOCK, (bc - b_c0) * BLOCK
            out[:, y : y + BLOCK, x : x + BLOCK] = rng.standard_normal((7, BLOCK, BLOCK), dtype=np.float32)
    dy, dx = row0 - b_r0 * BLOCK, col0 - b_c0 * BLOCK
    return out[:, dy : dy + height, dx : dx + width]


def _elevation(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    return 350.0 + 300.0 * fbm(rows, cols, 600, seed + 7, 3) + 20.0 * fbm(rows, cols, 30, seed + 8, 2)


def landsat_tile(row0: int, col0: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(14, h, w) float32 values of `soilnet.data.bands.BAND_NAMES` (band units) at a global pixel window."""
    rows = np.arange(row0, row0 + height, dtype=np.float64)[:, None]
    cols = np.arange(col0, col0 + width, dtype=np.float64)[None, :]
    p_row = np.floor((rows + 6 * value_noise(rows, cols, 24, seed + 1)) / PARCEL_PX)
    p_col = np.floor((cols + 6 * value_noise(rows, cols, 24, seed + 2)) / PARCEL_PX)
    pick = 0.35 * (value_noise(p_row, p_col, 1.0, seed + 3) + 1) + 0.15 * (fbm(rows, cols, 400, seed + 4, 3) + 1)
    cls = np.searchsorted(_CLASS_CDF, np.clip(pick, 0, 0.999))
    vigour = 1 + 0.15 * value_noise(p_row, p_col, 1.0, seed + 5).astype(np.float32)
    texture = 1 + 0.02 * fbm(rows, cols, 6, seed + 6, 2).astype(np.float32)
    sr = _SPECTRA[cls].transpose(2, 0, 1) * (vigour * texture)[None]
    sr += NOISE * _sensor_noise(row0, col0, height, width, seed)
    sr = np.clip(sr, 0.001, 1.0)
    halo_r = np.arange(row0 - 1, row0 + height + 1, dtype=np.float64)[:, None]
    halo_c = np.arange(col0 - 1, col0 + width + 1, dtype=np.float64)[None, :]
    elev = _elevation(halo_r, halo_c, seed)
    bands = [sr, indices(sr), elev[None, 1:-1, 1:-1], slope_percent(elev, 30.0)[None]]
    return np.concatenate(bands).astype(np.float32)


def landsat_raw(row0: int, col0: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """The same window as `landsat_tile`, encoded to the raster cube's int16 storage values."""
    specs = [band_spec(b) for b in BAND_NAMES]
    scale = np.array([s.scale for s in specs])
    offset = np.array([s.offset for s in specs])
    return encode(landsat_tile(row0, col0, height, width, seed), scale, offset)


def compression_ratio(raw: np.ndarray, chunk: int = 64, clevel: int = 3, shuffle: int = Blosc.SHUFFLE) -> float:
    """Decoded / compressed bytes of a (C, H, W) array cut into ``chunk`` px chunks of every band.

    The default is the codec of the real-Landsat reference figure: blosc-zstd level 3, byte shuffle.
    """
    codec = Blosc(cname="zstd", clevel=clevel, shuffle=shuffle)
    decoded = compressed = 0
    for r in range(0, raw.shape[-2], chunk):
        for c in range(0, raw.shape[-1], chunk):
            block = np.ascontiguousarray(raw[..., r : r + chunk, c : c + chunk])
            decoded += block.nbytes
            compressed += len(codec.encode(block))
    return decoded / compressed
