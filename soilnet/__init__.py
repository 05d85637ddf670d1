"""soilnet: continental soil-property mapping from Landsat and climate series on Ray."""

__version__ = "0.1.0"
