"""Data: cube contracts, points table, demo region, ingest, Earth Engine and sampling."""
