"""The ``map`` configuration section: inputs, model source, output grid, tiling and execution."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from soilnet.configbase import StrictModel
from soilnet.paths import confine_as_given

if TYPE_CHECKING:
    from soilnet.data.climate_cube import ClimateCube

MLFLOW_ALIAS = re.compile(r"^models:/[^@/]+@[A-Za-z0-9_-]+$")


class ModelSourceConfig(StrictModel):
    """Where the map job loads its model: a bundle (URL or MLflow alias) or loose checkpoint files."""

    bundle: str | None = Field(
        None,
        description="Model bundle folder URL, or an MLflow registry alias 'models:/<name>@<alias>' "
        "(e.g. models:/soilnet-soc_g_kg@champion: one registered model per target, soilnet-<target>).",
    )
    registry: str | None = Field(
        None,
        description="MLflow tracking URI that holds a models:/ alias; None: map.mlflow_tracking_uri, else "
        "$MLFLOW_TRACKING_URI, else the workspace's SQLite registry next to the raster cube "
        "(<raster folder>/mlruns.db, where `soilnet demo` registers).",
    )
    recipe: str | None = Field(None, description="Checkpoint source: URL of the recipe YAML.")
    weights: list[str] = Field([], description="Checkpoint source: one safetensors URL per fold model (ensemble).")
    normalisation: str | None = Field(None, description="Checkpoint source: URL of normalisation.json.")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSourceConfig:
        loose = self.recipe is not None or bool(self.weights) or self.normalisation is not None
        if self.bundle is not None and loose:
            raise ValueError("model: give either 'bundle' or 'recipe'/'weights'/'normalisation', not both")
        if self.bundle is None and not (self.recipe and self.weights and self.normalisation):
            raise ValueError("model: give 'bundle', or all of 'recipe', 'weights' and 'normalisation'")
        if self.bundle is not None and self.bundle.startswith("models:/") and not MLFLOW_ALIAS.match(self.bundle):
            raise ValueError(f"model.bundle {self.bundle!r}: an MLflow source must look like models:/<name>@<alias>")
        return self


class MapConfig(StrictModel):
    """A map job: which cubes, which model, which output grid, how it is tiled and run."""

    raster: str = Field(..., min_length=1, description="Raster cube URL (the imagery).")
    climate: str = Field(..., min_length=1, description="Climate cube URL.")
    region: str | None = Field(None, description="Region GeoJSON (WGS84) URL; None maps the whole raster cube.")
    out: str = Field(..., min_length=1, description="Output folder URL: map.zarr, cog/, stac/, preview.png.")
    write_roots: list[str] = Field(
        [],
        description="Roots the job may write under (local folders or s3://bucket/prefix); when given, out must lie "
        "under one of them ('..' segments, other folders and other buckets are refused).",
    )
    model: ModelSourceConfig = Field(..., description="The model to map with.")
    targets: list[str] = Field(
        ["soc_g_kg"], min_length=1, description="Layer name of each model output, units in the name."
    )
    climate_end: str = Field(
        ...,
        pattern=r"^(\d{4}-\d{2}|latest)$",
        description="Month (YYYY-MM) the climate series end at (the map's date); 'latest': the newest month of "
        "the climate cube, resolved when the job starts.",
    )
    resolution_m: float = Field(
        ..., gt=0, description="Output pixel size in metres; a whole multiple of the raster cube's pixel size."
    )
    tile_px: int = Field(256, ge=8, le=8192, description="Tile side in output pixels (a multiple of chunk_px).")
    chunk_px: int = Field(256, ge=8, le=8192, description="Map cube chunk side in output pixels.")
    mode: Literal["windows", "dense"] = Field(
        "windows",
        description="'windows': every window cut in memory (exact); 'dense': one encoder pass per tile "
        "(fast, approximate; resolution must be a multiple of the encoder cell).",
    )
    batch_size: int = Field(256, ge=1, description="Windows per forward pass in a predictor.")
    threads: int = Field(1, ge=1, le=256, description="Torch threads per predictor (fixed for identical bytes).")
    executor: Literal["ray", "local"] = Field("ray", description="Ray Data pipeline, or in-process (no cluster).")
    predictors: int = Field(1, ge=1, description="Number of predictor actors (one model copy each).")
    readers: int = Field(1, ge=1, description="Number of tile reader actors.")
    cpus_per_actor: float = Field(0.5, gt=0, description="CPUs requested by each reader, predictor and writer.")
    gpus_per_predictor: float | None = Field(
        None, ge=0, description="GPUs per predictor actor; None: 1 when the cluster has GPUs, else 0."
    )
    incremental: bool = Field(
        True,
        description="Recompute done tiles whose inputs changed (shard digests, or re-read and hashed for cubes "
        "without digests); False trusts done markers of the same model and config (plain resume).",
    )
    lease_ttl_s: float = Field(
        60.0,
        gt=0,
        description="Seconds without a heartbeat after which a map run counts as dead and its lease is taken over.",
    )
    lease_wait_s: float = Field(
        0.0, ge=0, description="Seconds to wait for another live run writing the same map before refusing."
    )
    cog_scale: float = Field(0.1, gt=0, description="COG integer scale: value = stored * scale (0.1: dg/kg).")
    cog_blocksize: int = Field(256, ge=16, description="COG internal tile size in pixels (power of two).")
    gpu_peak_tflops: float = Field(
        989.0, gt=0, description="Planning: peak TFLOP/s of one GPU (H100 SXM dense bf16: 989)."
    )
    gpu_peak_fraction: float = Field(
        0.4, gt=0, le=1, description="Planning ASSUMPTION until a GPU run measures it: share of peak sustained."
    )
    cpus_per_gpu: int = Field(8, ge=1, description="Planning: reader CPU cores that come with each GPU.")
    gpu_hour_usd: float = Field(4.0, ge=0, description="Planning ASSUMPTION: price of one GPU node-hour in USD.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI of mlflow_run_id; None: $MLFLOW_TRACKING_URI or MLflow's default."
    )
    mlflow_run_id: str | None = Field(None, description="MLflow run to log outputs into; None: no logging.")

    @field_validator("cog_blocksize")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"cog_blocksize {value} is not a power of two")
        return value

    @model_validator(mode="after")
    def _tile_holds_chunks(self) -> MapConfig:
        if self.tile_px % self.chunk_px:
            raise ValueError(
                f"tile_px ({self.tile_px}) must be a multiple of chunk_px ({self.chunk_px}) "
                "so tile writes never overlap"
            )
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets has duplicates: {self.targets}")
        if self.write_roots:
            confine_as_given(self.out, self.write_roots, "out")
        return self


def resolve_climate_end(cfg: MapConfig, climate: ClimateCube | None = None) -> MapConfig:
    """``cfg`` with ``climate_end: latest`` replaced by the newest month of its climate cube (``climate`` if open).

    A climate cube opens read-only only once complete, so its newest month is a complete month.
    """
    if cfg.climate_end != "latest":
        return cfg
    if climate is None:
        from soilnet.data.climate_cube import open_climate_cube

        climate = open_climate_cube(cfg.climate)
    return cfg.model_copy(update={"climate_end": str(climate.times[-1].astype("datetime64[M]"))})
