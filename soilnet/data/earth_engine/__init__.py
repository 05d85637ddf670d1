"""Google Earth Engine acquisition: Landsat-8 composite, TerraClimate series, WorldCover mask.

`run_acquisition` runs the whole acquisition from an `AcquireConfig`; `landed_tiles` lists the
GeoTIFF tiles that have landed, for the raster and climate ingest.
"""

from soilnet.data.earth_engine.acquire import landed_tiles, plan_products, run_acquisition
from soilnet.data.earth_engine.config import AcquireConfig

__all__ = ["AcquireConfig", "landed_tiles", "plan_products", "run_acquisition"]
