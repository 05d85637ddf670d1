"""The products an acquisition exports: Landsat-8 composite, TerraClimate series, WorldCover land cover."""

from typing import Literal

Product = Literal["landsat", "climate", "landcover"]
PRODUCTS: tuple[Product, ...] = ("landsat", "climate", "landcover")
