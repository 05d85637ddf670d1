"""soilnet: continental soil-property mapping from Landsat and climate series on Ray."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["open_cube"]


def __getattr__(name: str) -> Any:
    """``soilnet.open_cube`` without importing xarray and zarr for every ``import soilnet``."""
    if name == "open_cube":
        from soilnet.data.xarray_backend import open_cube

        return open_cube
    raise AttributeError(f"module 'soilnet' has no attribute {name!r}")
