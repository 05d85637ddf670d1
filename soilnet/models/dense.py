"""Exact dense prediction over whole tiles: every window cut in memory and predicted in batches.

`predict_tile` gives, in one call, the map of predictions for all windows of a tile at a given
stride, equal (up to float summation order) to calling the model on each window separately.
`SoilNetModel.predict_dense` is the faster approximate alternative (one encoder pass per tile).
"""

from __future__ import annotations

import torch

from soilnet.models.fusion import SoilNetModel


def cut_windows(tile: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Windows (B, gh, gw, C, window, window) of tiles (B, C, H, W), window (i, j) at i*stride."""
    if tile.ndim != 4:
        raise ValueError(f"tile must be (batch, bands, height, width), got {tuple(tile.shape)}")
    if window <= 0 or stride <= 0:
        raise ValueError(f"window ({window}) and stride ({stride}) must be positive")
    _, _, h, w = tile.shape
    if h < window or w < window:
        raise ValueError(f"tile {h}x{w} px is smaller than the {window} px window")
    patches = tile.unfold(2, window, stride).unfold(3, window, stride)  # B, C, gh, gw, win, win
    return patches.permute(0, 2, 3, 1, 4, 5)


@torch.no_grad()
def predict_tile(
    model: SoilNetModel,
    tile: torch.Tensor,
    climate: torch.Tensor | None,
    window: int,
    stride: int,
    missing: torch.Tensor | None = None,
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Predictions (B, n_targets, gh, gw) for every window of the tiles, `batch_size` at a time.

    `climate` is one series per tile (B, T, V), shared by all its windows, or one per window
    (B, gh, gw, T, V); `missing` follows the same layout without the variable axis. Put the
    model in eval mode first (dropout, BatchNorm statistics).
    """
    windows = cut_windows(tile, window, stride)
    b, gh, gw = windows.shape[:3]
    n = b * gh * gw
    flat = windows.reshape(n, *windows.shape[3:])
    per_window_climate = _per_window(climate, b, gh, gw, "climate", 3)
    per_window_missing = _per_window(missing, b, gh, gw, "missing", 2)
    chunks: list[dict[str, torch.Tensor]] = []
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        chunks.append(
            model(
                flat[part],
                None if per_window_climate is None else per_window_climate[part],
                None if per_window_missing is None else per_window_missing[part],
            )
        )
    return {key: torch.cat([c[key] for c in chunks]).reshape(b, gh, gw, -1).permute(0, 3, 1, 2) for key in chunks[0]}


def _per_window(
    values: torch.Tensor | None, b: int, gh: int, gw: int, name: str, per_tile_ndim: int
) -> torch.Tensor | None:
    """Per-tile (B, ...) values repeated for each window, or per-window values flattened."""
    if values is None:
        return None
    if values.ndim == per_tile_ndim:
        return values.repeat_interleave(gh * gw, dim=0)
    if values.ndim == per_tile_ndim + 2 and tuple(values.shape[:3]) == (b, gh, gw):
        return values.reshape(b * gh * gw, *values.shape[3:])
    raise ValueError(
        f"{name} must be per tile ({per_tile_ndim} dims) or per window ({b}, {gh}, {gw}, ...), "
        f"got {tuple(values.shape)}"
    )
