"""The ``ingest`` configuration section: how files become raster cubes, climate cubes and points."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from soilnet.configbase import StrictModel
from soilnet.data.bands import CLIMATE_VARIABLES
from soilnet.data.points import TARGET_COLUMNS

Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode"]
Bounds = tuple[float, float, float, float]

#: Landsat Collection 2 Level-2 QA_PIXEL bits masked by default: dilated cloud, cirrus, cloud, shadow, snow.
LANDSAT_QA_BITS: tuple[int, ...] = (1, 2, 3, 4, 5)


def _check_bounds(bounds: Bounds | None, field: str) -> None:
    if bounds is not None and not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
        raise ValueError(f"{field}: {bounds} is not (west, south, east, north) with west < east, south < north")


class RasterIngestConfig(StrictModel):
    """GeoTIFF / COG files -> raster cube: target grid, band mapping, resampling, Landsat handling."""

    epsg: int = Field(3035, ge=1024, le=999999, description="EPSG code of the cube grid (equal-area for maps).")
    resolution: float = Field(30.0, gt=0, description="Cube pixel size in units of the cube CRS (metres).")
    bounds: Bounds | None = Field(
        None,
        description="Cube extent (west, south, east, north) in the cube CRS; default: union of the inputs. "
        "Snapped outward to whole pixels.",
    )
    source_bands: list[str] | None = Field(
        None,
        description="Name of each band of every input file, in file order (e.g. SR_B1..SR_B7, QA_PIXEL); "
        "default: the cube's band list. A file with fewer bands is an error.",
    )
    resampling: Resampling = Field(
        "bilinear", description="Resampling of continuous bands (use nearest or mode for classes)."
    )
    src_nodata: float | None = Field(
        None, allow_inf_nan=True, description="Nodata value of the inputs when the files declare none (NaN allowed)."
    )
    landsat_c2: bool = Field(
        False,
        description="Inputs are raw Landsat Collection 2 Level-2 DNs: SR_B* get reflectance = DN * 2.75e-5 - 0.2 "
        "and pixels flagged in the QA band are masked.",
    )
    qa_band: str = Field("QA_PIXEL", min_length=1, description="Source band holding Landsat QA_PIXEL bit flags.")
    qa_mask_bits: list[int] = Field(
        default_factory=lambda: list(LANDSAT_QA_BITS),
        description="QA_PIXEL bits that mask a pixel (1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow, 5 snow).",
    )
    workers: int = Field(2, ge=1, le=64, description="Shards warped and written concurrently (threads).")

    @model_validator(mode="after")
    def _check(self) -> RasterIngestConfig:
        _check_bounds(self.bounds, "ingest.raster.bounds")
        bad = [b for b in self.qa_mask_bits if not 0 <= b <= 15]
        if bad:
            raise ValueError(f"ingest.raster.qa_mask_bits: bits {bad} outside 0..15")
        if self.source_bands is not None and len(set(self.source_bands)) != len(self.source_bands):
            raise ValueError(f"ingest.raster.source_bands: duplicate names in {self.source_bands}")
        return self


class ClimateIngestConfig(StrictModel):
    """NetCDF files (TerraClimate layout or multi-variable) -> climate cube."""

    variables: list[str] = Field(
        default_factory=lambda: list(CLIMATE_VARIABLES),
        min_length=1,
        description="Variables in cube order (the declared order, never the order files are found in).",
    )
    epsg: int | None = Field(
        None, ge=1024, le=999999, description="EPSG code of the climate grid; default: the source grid (lon/lat)."
    )
    resolution: float | None = Field(None, gt=0, description="Climate pixel size in cube CRS units (with epsg).")
    bounds: Bounds | None = Field(
        None, description="Climate cube extent (west, south, east, north) in the cube CRS; default: whole source."
    )
    resampling: Literal["nearest", "bilinear"] = Field("nearest", description="Regridding onto another grid.")
    start: dt.date | None = Field(None, description="First month kept (default: the first month of the files).")
    end: dt.date | None = Field(None, description="Last month kept (default: the last month of the files).")
    block_mb: float = Field(128.0, gt=0, le=8192, description="Memory bound in MiB of one written block (all months).")

    @model_validator(mode="after")
    def _check(self) -> ClimateIngestConfig:
        _check_bounds(self.bounds, "ingest.climate.bounds")
        if len(set(self.variables)) != len(self.variables):
            raise ValueError(f"ingest.climate.variables: duplicate names in {self.variables}")
        if (self.epsg is None) != (self.resolution is None):
            raise ValueError("ingest.climate: set epsg and resolution together (or neither: keep the source grid)")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"ingest.climate: start {self.start} is after end {self.end}")
        return self


class TargetColumn(StrictModel):
    """One target column of a points table and where its values come from."""

    columns: list[str] = Field(..., min_length=1, description="Source column names tried in order (aliases).")
    factor: float = Field(1.0, gt=0, description="Multiplier from source units to the target's units.")


PointFormat = Literal["lucas2009", "lucas2015", "lucas2018", "raca", "generic"]


class PointSchema(StrictModel):
    """How a point file's columns map onto the points table (presets exist for LUCAS and RaCA)."""

    source: str = Field(..., min_length=1, description="Survey name written to the `source` column.")
    id_columns: list[str] = Field(..., min_length=1, description="Column holding the sample id (aliases).")
    x_columns: list[str] = Field(..., min_length=1, description="Longitude or easting column (aliases).")
    y_columns: list[str] = Field(..., min_length=1, description="Latitude or northing column (aliases).")
    epsg: int = Field(4326, ge=1024, le=999999, description="CRS of the x / y columns (4326 = lon/lat).")
    date_columns: list[str] = Field(default_factory=list, description="Sampling date column (aliases).")
    date_format: str | None = Field(None, description="strftime format of the dates (default: ISO / inferred).")
    default_date: dt.date | None = Field(None, description="Sampling date when the file has no date column.")
    depth_top_cm: float = Field(0.0, ge=0, description="Top of the sampled layer in cm.")
    depth_bottom_cm: float = Field(20.0, gt=0, description="Bottom of the sampled layer in cm.")
    depth_columns: list[str] = Field(
        default_factory=list,
        description="Column giving each row's layer as 'TOP-BOTTOM cm' (aliases, e.g. LUCAS 2018 'Depth'); "
        "rows without it get depth_top_cm / depth_bottom_cm.",
    )
    targets: dict[str, TargetColumn] = Field(
        ..., min_length=1, description="Target column (e.g. soc_g_kg) -> source columns and unit factor."
    )
    all_zero_is_missing: list[str] = Field(
        default_factory=list,
        description="Targets that mean 'not measured' when all of them are 0 in a row (e.g. LUCAS clay, silt and "
        "sand): such rows get NaN for these targets instead of 0.",
    )

    @model_validator(mode="after")
    def _check(self) -> PointSchema:
        unknown = [t for t in self.targets if t not in TARGET_COLUMNS]
        if unknown:
            raise ValueError(f"targets {unknown} are not known target columns ({list(TARGET_COLUMNS)})")
        stray = [t for t in self.all_zero_is_missing if t not in self.targets]
        if stray:
            raise ValueError(f"all_zero_is_missing: {stray} are not targets of schema {self.source!r}")
        if self.depth_bottom_cm <= self.depth_top_cm:
            raise ValueError(f"depth_bottom_cm ({self.depth_bottom_cm}) must exceed depth_top_cm")
        if not self.date_columns and self.default_date is None:
            raise ValueError(f"schema {self.source!r}: give date_columns or a default_date")
        return self


class PointsIngestConfig(StrictModel):
    """Soil sample files (LUCAS, RaCA, generic CSV / Parquet) -> points table, with declared rules."""

    format: PointFormat = Field("generic", description="Input layout: a LUCAS survey, RaCA, or generic.")
    point_schema: PointSchema | None = Field(
        None, description="Column mapping; required for generic, replaces the preset for the other formats."
    )
    epsg: int = Field(3035, ge=1024, le=999999, description="CRS of the table's x / y (the cube CRS).")
    region_lonlat: Bounds | None = Field(
        None, description="Region (west, south, east, north) in lon/lat; points outside follow `out_of_region`."
    )
    below_detection: Literal["half", "limit", "reject"] = Field(
        "half",
        description="Values like '< 6': half the limit, the limit itself, or reject the row "
        "('<LOD' without a number is always rejected).",
    )
    duplicates: Literal["keep_first", "reject_all"] = Field(
        "keep_first",
        description="Rows sharing an id, or a location and date: keep the first and reject the rest, or reject all.",
    )
    out_of_region: Literal["reject", "keep"] = Field("reject", description="Points outside the region or grid.")
    swapped_lat_lon: Literal["reject", "fix"] = Field(
        "reject", description="Rows whose lat/lon look swapped: reject them ('lat/lon swapped?') or swap them back."
    )

    @model_validator(mode="after")
    def _check(self) -> PointsIngestConfig:
        _check_bounds(self.region_lonlat, "ingest.points.region_lonlat")
        if self.format == "generic" and self.point_schema is None:
            raise ValueError("ingest.points.point_schema is required for format 'generic' (column mapping)")
        return self


class IngestConfig(StrictModel):
    """File ingest: rasters, climate NetCDF and soil sample tables."""

    raster: RasterIngestConfig = Field(default_factory=RasterIngestConfig, description="GeoTIFF / COG ingest.")
    climate: ClimateIngestConfig = Field(default_factory=ClimateIngestConfig, description="NetCDF ingest.")
    points: PointsIngestConfig = Field(
        default_factory=lambda: PointsIngestConfig(format="lucas2018"), description="Soil sample ingest."
    )
