"""The map viewer: ``soilnet serve`` serves a map's COGs as tiles, values and points to a Leaflet page."""
