"""File ingest: GeoTIFF / COG rasters, NetCDF climate series and soil sample tables into soilnet's cubes.

- `raster.ingest_rasters`: mosaic and reproject rasters onto a cube grid, shard by shard, resumable.
- `climate.ingest_climate`: monthly NetCDF (TerraClimate layout or multi-variable) into a climate cube.
- `points.ingest_points`: LUCAS / RaCA / generic tables into the points table, with a rejects file.
"""
