"""The map config section: errors name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from soilnet.mapping.config import MapConfig, ModelSourceConfig

BASE = {
    "raster": "r.zarr",
    "climate": "c.zarr",
    "out": "out",
    "model": {"bundle": "models:/soilnet@champion"},
    "climate_end": "2018-06",
    "resolution_m": 240,
}


def test_valid_config_has_documented_defaults() -> None:
    cfg = MapConfig(**BASE)
    assert cfg.tile_px % cfg.chunk_px == 0 and cfg.targets == ["soc_g_kg"]
    assert all(f.description for f in MapConfig.model_fields.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tile_px": 100, "chunk_px": 64}, "multiple of chunk_px"),
        ({"climate_end": "2018-6"}, "climate_end"),
        ({"resolution_m": 0}, "resolution_m"),
        ({"cog_blocksize": 100}, "power of two"),
        ({"targets": ["a", "a"]}, "duplicates"),
        ({"mode": "fast"}, "mode"),
    ],
)
def test_bad_fields_are_named(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MapConfig(**{**BASE, **change})


def test_model_source_needs_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="not both"):
        ModelSourceConfig(bundle="b", recipe="r.yaml")
    with pytest.raises(ValidationError, match="all of 'recipe', 'weights'"):
        ModelSourceConfig(recipe="r.yaml")
    with pytest.raises(ValidationError, match="models:/<name>@<alias>"):
        ModelSourceConfig(bundle="models:/soilnet/3")
