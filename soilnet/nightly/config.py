"""The ``nightly`` configuration section: the map to regenerate, where releases go, the sanity gate."""

from __future__ import annotations

from pydantic import Field, model_validator

from soilnet.configbase import StrictModel
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.mapping.config import MapConfig
from soilnet.paths import confine_as_given


class GateConfig(StrictModel):
    """When a night's map is refused instead of published (compared with the last release)."""

    change_threshold: float = Field(
        5.0, gt=0, description="Y: a pixel 'changed' when its mean moved by more than this (target units)."
    )
    max_changed_pct: float = Field(
        5.0,
        ge=0,
        le=100,
        description="X: with the same model, refuse when more than X % of the pixels changed by more than Y.",
    )
    max_missing_jump_pct: float = Field(
        2.0,
        ge=0,
        le=100,
        description="Refuse when the input-missing share of the region's pixels rose by more than this many "
        "percentage points.",
    )


class NightlyConfig(StrictModel):
    """A nightly regeneration: new inputs in, an incremental map, a gated and atomic release out."""

    map: MapConfig = Field(..., description="The map to regenerate (climate_end: latest follows the climate cube).")
    releases: str = Field(
        ...,
        min_length=1,
        description="Folder URL of the releases: <releases>/<version>/ per night, <releases>/latest.json the "
        "pointer readers follow (moved last).",
    )
    keep: int = Field(7, ge=1, le=1000, description="Releases kept; older ones are deleted after a publish.")
    gate: GateConfig = Field(default_factory=GateConfig, description="The sanity gate of a night's map.")
    acquire: AcquireConfig | None = Field(
        None,
        description="Earth Engine acquisition of new inputs (landsat composites by year, climate months); None: "
        "the cubes are refreshed by another job and the night only maps what they hold.",
    )
    experiment: str = Field("soilnet-nightly", min_length=1, description="MLflow experiment of the nightly runs.")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; None: $MLFLOW_TRACKING_URI or MLflow's default."
    )
    webhook_env: str = Field(
        "SOILNET_NIGHTLY_WEBHOOK_URL",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding a webhook URL POSTed on a failed night (e.g. from a Secret); "
        "unset or empty: no call.",
    )

    @model_validator(mode="after")
    def _releases_are_writable(self) -> NightlyConfig:
        if self.map.write_roots:
            confine_as_given(self.releases, self.map.write_roots, "releases")
        return self
