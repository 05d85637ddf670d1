"""Spectral errors per axis region: reconstruction (VAE) and conversion (NIR->MIR) against measured spectra."""

from __future__ import annotations

import numpy as np

from soilnet.spectra.config import Region


def region_key(region: Region) -> str:
    """A metric-name-safe key of a region (``600_1200``)."""
    return f"{region.start:g}_{region.stop:g}"


def region_rmse(
    predicted: np.ndarray, measured: np.ndarray, axis: np.ndarray, regions: list[Region]
) -> dict[str, float]:
    """RMSE over every point (``all``) and over the points of each region (keyed by `region_key`)."""
    if predicted.shape != measured.shape or predicted.shape[-1] != axis.size:
        raise ValueError(f"predicted {predicted.shape}, measured {measured.shape} and axis ({axis.size},) disagree")
    squared = (np.asarray(predicted, np.float64) - np.asarray(measured, np.float64)) ** 2
    out = {"all": float(np.sqrt(squared.mean()))}
    for region in regions:
        inside = (axis >= region.start) & (axis <= region.stop)
        if inside.any():
            out[region_key(region)] = float(np.sqrt(squared[:, inside].mean()))
    return out


def format_region_table(rows: dict[str, dict[str, float]], regions: list[Region], digits: int = 4) -> str:
    """Plain-text table: one row per predictor, one column per region (the region names as header)."""
    names = {"all": "all points", **{region_key(r): r.name for r in regions}}
    keys = [k for k in names if any(k in row for row in rows.values())]
    header = ["predictor", *(names[k] for k in keys)]
    body = [[label, *(f"{row[k]:.{digits}f}" if k in row else "-" for k in keys)] for label, row in rows.items()]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
