"""Google Earth Engine acquisition: Landsat-8 composite, TerraClimate series, WorldCover mask.

`soilnet.data.earth_engine.acquire.run_acquisition` runs the whole acquisition from an
`AcquireConfig`; `landed_tiles` lists the GeoTIFF tiles that have landed, for the raster and
climate ingest. The package itself imports nothing, so reading a config does not load earthengine-api.
"""
