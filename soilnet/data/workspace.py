"""The workspace: where the cubes, tables and run outputs of a soilnet config live."""

from __future__ import annotations

from pydantic import Field

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.paths import confine_as_given


class DataConfig(StrictModel):
    """Where the cubes and tables live (local paths or s3:// URLs)."""

    root: str = Field("demo", description="Workspace URL; the defaults below are relative to it.")
    raster: str | None = Field(None, description="Raster cube URL (default: <root>/raster.zarr).")
    climate: str | None = Field(None, description="Climate cube URL (default: <root>/climate.zarr).")
    points: str | None = Field(None, description="Points table URL (default: <root>/points.parquet).")
    truth: str | None = Field(None, description="True target map, demo only (default: <root>/truth.zarr).")
    region: str | None = Field(None, description="Region GeoJSON URL (default: <root>/region.geojson).")
    runs: str | None = Field(None, description="Run outputs: checkpoints, maps (default: <root>/runs).")
    write_roots: list[str] = Field(
        [],
        description="Roots the jobs may write under besides root (local folders or s3://bucket/prefix); every "
        "output URL of a config (runs, encoders, bundle, ingest outputs) must lie under one of them.",
    )

    def writable(self, url: str, field: str) -> str:
        """`url` normalised if under ``root`` or a ``write_roots`` entry, else a PathEscapeError naming `field`."""
        return confine_as_given(url, [self.root, *self.write_roots], field)

    def url(self, part: str) -> str:
        """The URL of a part, explicit or derived from the workspace root."""
        explicit = getattr(self, part)
        if explicit:
            return str(explicit)
        suffix = {
            "raster": "raster.zarr",
            "climate": "climate.zarr",
            "points": "points.parquet",
            "truth": "truth.zarr",
            "region": "region.geojson",
            "runs": "runs",
        }[part]
        return storage.join(storage.resolve(self.root).url, suffix)
