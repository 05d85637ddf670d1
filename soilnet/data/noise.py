"""Deterministic, seamless value noise evaluated at any coordinates.

The noise is a pure function of (row, col, seed), so a region of any size can be generated
tile by tile (with halos) and adjacent tiles agree exactly at their seams.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A splitmix64-style hash of integer lattice points to uniform values in [0, 1)."""
    with np.errstate(over="ignore"):
        h = (ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
            iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        )
        h ^= np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x165667B19E3779F9)
        h ^= h >> np.uint64(30)
        h *= _M1
        h ^= h >> np.uint64(27)
        h *= _M2
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def value_noise(rows: np.ndarray, cols: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth noise in [-1, 1] with features about ``cell`` pixels wide; inputs broadcast."""
    r = np.asarray(rows, dtype=np.float64) / cell
    c = np.asarray(cols, dtype=np.float64) / cell
    r0, c0 = np.floor(r), np.floor(c)
    fr, fc = r - r0, c - c0
    sr, sc = fr * fr * (3 - 2 * fr), fc * fc * (3 - 2 * fc)
    r0i, c0i = r0.astype(np.int64), c0.astype(np.int64)
    v00 = _hash01(r0i, c0i, seed)
    v01 = _hash01(r0i, c0i + 1, seed)
    v10 = _hash01(r0i + 1, c0i, seed)
    v11 = _hash01(r0i + 1, c0i + 1, seed)
    top = v00 + (v01 - v00) * sc
    bottom = v10 + (v11 - v10) * sc
    return 2.0 * (top + (bottom - top) * sr) - 1.0


def fbm(rows: np.ndarray, cols: np.ndarray, cell: float, seed: int, octaves: int = 4) -> np.ndarray:
    """Fractal (multi-octave) value noise, roughly in [-1, 1]."""
    total = np.zeros(np.broadcast_shapes(np.shape(rows), np.shape(cols)), dtype=np.float64)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * value_noise(rows, cols, cell / 2**octave, seed * 131 + octave)
        norm += amplitude
        amplitude *= 0.5
    return total / norm
