"""The ``acquire`` configuration section: what to export from Earth Engine, where, and how fast."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from soilnet.configbase import StrictModel
from soilnet.data.earth_engine.products import PRODUCTS, Product

#: TerraClimate's native pixel size in degrees (1/24 degree, about 4.6 km).
TERRACLIMATE_RES_DEG = 1.0 / 24.0


def _epsg_of(value: str, field: str) -> int:
    """The EPSG code of an ``EPSG:NNNN`` string; a clear error names the field otherwise."""
    from pyproj import CRS  # here, not at import: the CLI reads this module for its options
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError as exc:
        raise ValueError(f"{field}: {value!r} is not a known CRS ({exc})") from exc
    code = crs.to_epsg()
    if code is None:
        raise ValueError(f"{field}: {value!r} has no EPSG code")
    return code


class AcquireConfig(StrictModel):
    """Earth Engine acquisition: Landsat-8 composite, TerraClimate series and WorldCover mask."""

    region: str = Field(..., description="URL of a GeoJSON file (WGS84 lon/lat) with the region polygon(s).")
    year: int = Field(
        ..., ge=2013, le=2100, description="Year of the Landsat-8 composite (scene rule of REFERENCE.md)."
    )
    sampling_end_date: dt.date = Field(
        ..., description="End of the climate series: its month is the last of the `climate_months` months exported."
    )
    climate_months: int = Field(61, ge=1, le=600, description="Number of monthly TerraClimate steps exported.")
    products: list[Product] = Field(
        default_factory=lambda: list(PRODUCTS), min_length=1, description="Products to export, in this order."
    )
    crs: str = Field(
        "EPSG:3035", description="Equal-area CRS of the raster cube grid (EPSG:3035 Europe, EPSG:5070 US)."
    )
    resolution_m: float = Field(30.0, gt=0, le=1000, description="Pixel size of the raster cube grid in metres.")
    tile_size_px: int = Field(
        2048, ge=256, le=16384, multiple_of=256, description="Export tile side in raster pixels (one task per tile)."
    )
    climate_crs: str = Field("EPSG:4326", description="CRS of the climate cube grid (TerraClimate's own by default).")
    climate_resolution: float = Field(
        TERRACLIMATE_RES_DEG, gt=0, description="Climate grid pixel size in units of `climate_crs`."
    )
    climate_tile_size_px: int = Field(
        256, ge=256, le=4096, multiple_of=256, description="Export tile side in climate pixels."
    )
    max_cloud_fraction: float = Field(
        0.1, gt=0, le=1, description="Largest cloud + shadow fraction of the scene window for a usable pixel."
    )
    max_snow_fraction: float = Field(
        0.1, gt=0, le=1, description="Largest snow fraction of the scene window for a usable pixel."
    )
    scene_window_px: int = Field(
        64, ge=2, le=512, description="Side of the window (px) the cloud/snow fractions and mean NDVI are taken over."
    )
    destination: Literal["cloud_storage", "drive"] = Field(
        "cloud_storage", description="Where Earth Engine writes the GeoTIFF tiles."
    )
    bucket: str | None = Field(None, min_length=3, description="Cloud Storage bucket (destination cloud_storage).")
    bucket_prefix: str = Field("soilnet", description="Object name prefix inside the bucket.")
    drive_folder: str | None = Field(None, min_length=1, description="Google Drive folder (destination drive).")
    manifest_url: str = Field(..., description="URL of the JSON manifest recording each tile's export state.")
    landing_mirror: str | None = Field(
        None,
        min_length=1,
        description="URL (local folder or s3://) of a copy of the landed tiles, e.g. made with `gsutil rsync`: "
        "the ingest reads gs://<bucket>/<bucket_prefix> (or the Drive folder) from here instead.",
    )
    max_concurrent_tasks: int = Field(8, ge=1, le=3000, description="Largest number of tasks queued or running.")
    max_retries: int = Field(5, ge=0, le=50, description="Retries per tile after quota / 429 / too-many-tasks errors.")
    backoff_initial_s: float = Field(30.0, gt=0, description="First retry delay in seconds (doubles per retry).")
    backoff_max_s: float = Field(900.0, gt=0, description="Largest retry delay in seconds.")
    poll_interval_s: float = Field(30.0, gt=0, description="Seconds between task status polls.")
    max_pixels: int = Field(
        10**9, ge=256 * 256, le=10**13, description="Earth Engine maxPixels bound of one export task."
    )
    project: str | None = Field(
        None, min_length=1, description="Google Cloud project for Earth Engine (default: the key's project_id)."
    )
    credentials_path: str | None = Field(
        None, description="Path of a service-account key file, e.g. a mounted Kubernetes Secret."
    )
    credentials_env: str = Field(
        "SOILNET_EE_SERVICE_ACCOUNT_KEY",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the key file path (or the key JSON itself).",
    )

    @field_validator("products")
    @classmethod
    def _unique_products(cls, products: list[Product]) -> list[Product]:
        if len(set(products)) != len(products):
            raise ValueError(f"products must not repeat, got {products}")
        return products

    @field_validator("crs")
    @classmethod
    def _projected_metres(cls, value: str) -> str:
        from pyproj import CRS

        code = _epsg_of(value, "crs")
        crs = CRS.from_epsg(code)
        if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
            raise ValueError(f"crs: {value!r} is not a projected CRS in metres (use EPSG:3035 or EPSG:5070)")
        return f"EPSG:{code}"

    @field_validator("climate_crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        return f"EPSG:{_epsg_of(value, 'climate_crs')}"

    @model_validator(mode="after")
    def _consistent(self) -> AcquireConfig:
        if self.destination == "cloud_storage" and not self.bucket:
            raise ValueError("bucket is required when destination is cloud_storage")
        if self.destination == "drive" and not self.drive_folder:
            raise ValueError("drive_folder is required when destination is drive")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s}) < backoff_initial_s ({self.backoff_initial_s})")
        if self.max_pixels < self.tile_size_px**2:
            raise ValueError(f"max_pixels ({self.max_pixels}) is below one tile ({self.tile_size_px}^2 px)")
        return self

    @property
    def epsg(self) -> int:
        """EPSG code of the raster grid."""
        return int(self.crs.split(":")[1])

    @property
    def climate_epsg(self) -> int:
        """EPSG code of the climate grid."""
        return int(self.climate_crs.split(":")[1])
