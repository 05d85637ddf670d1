"""The root configuration: typed sections loaded from YAML, overridable with ``a.b=c`` pairs.

A wrong config fails at load time with every problem named by its dotted field path and the
file it came from. Endpoints and credentials are never configured here: they come from the
standard environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``MLFLOW_TRACKING_URI``,
``RAY_ADDRESS``, ...), so the same YAML runs on a laptop and on a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import Field, ValidationError, model_validator

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.data.climate_cube import ClimateLayout
from soilnet.data.demo_region import DemoConfig
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.ingest.config import IngestConfig
from soilnet.data.raster_cube import RasterLayout
from soilnet.data.workspace import DataConfig
from soilnet.evaluation.design import ExperimentConfig
from soilnet.redaction import redact_userinfo
from soilnet.spectra.config import SpectraConfig
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import EvaluateConfig, FinetuneConfig, PretrainConfig, TrainConfig


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the fields."""


class SoilnetConfig(StrictModel):
    """Everything a soilnet job reads; each section is documented field by field."""

    data: DataConfig = Field(default_factory=DataConfig, description="Locations of cubes and tables.")
    demo: DemoConfig = Field(default_factory=DemoConfig, description="The generated demo region.")
    raster_layout: RasterLayout = Field(default_factory=RasterLayout, description="Raster cube chunking.")
    climate_layout: ClimateLayout = Field(default_factory=ClimateLayout, description="Climate cube chunking.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Ray Train workers, checkpoints, failures.")
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig, description="Self-supervised pretraining.")
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig, description="Fine-tuning with spatial CV.")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Baselines and the comparison.")
    experiment: ExperimentConfig = Field(
        default_factory=ExperimentConfig, description="`soilnet experiment`: seeds, paired test, recipes, --quick."
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow tracking and registry.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="File ingest of rasters, NetCDF, points.")
    spectra: SpectraConfig = Field(default_factory=SpectraConfig, description="Spectral library, VAE, property models.")
    acquire: AcquireConfig | None = Field(None, description="Earth Engine acquisition (region, year, ...).")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Logging level.")

    @model_validator(mode="after")
    def _outputs_stay_under_roots(self) -> SoilnetConfig:
        """The jobs' outputs (runs, encoders, bundle) lie under ``data.root`` or ``data.write_roots``."""
        outputs = {
            "data.runs": self.data.url("runs"),
            "pretrain.output": self.pretrain.output,
            "finetune.bundle": self.finetune.bundle,
        }
        for field, url in outputs.items():
            if url:
                self.data.writable(url, field)
        return self


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    if not all(keys):
        raise ConfigError(f"override {dotted!r}: empty key")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=x"]`` into a nested dict; values are parsed as YAML scalars."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not of the form section.field=value")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {pair!r}: value is not valid YAML: {exc}") from exc
        _set_dotted(tree, key.strip(), value)
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Safely load a YAML mapping from a local path or URL."""
    where = os.fspath(path)
    try:
        with storage.open_file(where, "rb") as f:
            tree = yaml.safe_load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {where} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {where} is not valid YAML: {exc}") from exc
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {where}: expected a mapping at the top level, got {type(tree).__name__}")
    return tree


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``section.field: message (got value)``."""
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else ""
        lines.append(f"  {loc}: {err['msg']}{got}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()) -> SoilnetConfig:
    """Load the config from YAML (or the embedded defaults) and apply ``a.b=c`` overrides."""
    tree = read_yaml(path) if path else {}
    tree = _merge(tree, parse_overrides(overrides))
    source = os.fspath(path) if path else "embedded defaults"
    if overrides:
        source += " + overrides " + " ".join(overrides)
    try:
        return SoilnetConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


M = TypeVar("M", bound=StrictModel)


def load_section(path: str | os.PathLike[str], key: str, model: type[M], overrides: Sequence[str] = ()) -> M:
    """One section of a YAML file (or the whole file if it has no such key), with ``a.b=c`` overrides.

    Overrides name fields of the section (``model.bundle=...``) or, as in the root config, the section
    and the field (``map.model.bundle=...``): both forms mean the same.
    """
    tree = read_yaml(path)
    section = tree.get(key, tree)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: the {key} section is not a mapping")
    extra = parse_overrides(overrides)
    if key not in model.model_fields and isinstance(extra.get(key), dict):
        extra = _merge({k: v for k, v in extra.items() if k != key}, extra[key])
    try:
        return model.model_validate(_merge(section, extra))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{path} [{key}]")) from exc


def with_overrides(cfg: SoilnetConfig, overrides: Sequence[str], source: str = "experiment arm") -> SoilnetConfig:
    """`cfg` with ``a.b=c`` overrides applied; errors name the fields and `source`."""
    tree = _merge(cfg.model_dump(mode="json"), parse_overrides(overrides))
    try:
        return SoilnetConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{source}: {' '.join(overrides)}")) from exc


def set_dotted(tree: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `tree` with each dotted key of `values` set (sections created; a None value replaces a section)."""
    extra: dict[str, Any] = {}
    for dotted, value in values.items():
        _set_dotted(extra, dotted, value)
    return _merge(tree, extra)


def dump_config(cfg: SoilnetConfig) -> str:
    """The effective configuration as YAML (what a run records), credentials in URLs masked."""
    return redact_userinfo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "jobs" / "configs" / "demo.yaml"
