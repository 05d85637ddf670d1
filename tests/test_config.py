"""Configuration loading, overrides and errors that name the field."""

from pathlib import Path

import pytest

from soilnet.config import DEFAULT_CONFIG, ConfigError, SoilnetConfig, dump_config, load_config, parse_overrides


def test_demo_yaml_loads_and_round_trips(tmp_path: Path) -> None:
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.demo.width_km == 30 and cfg.raster_layout.shard == 512
    dumped = tmp_path / "cfg.yaml"
    dumped.write_text(dump_config(cfg))
    assert load_config(dumped) == cfg


def test_embedded_defaults_without_file() -> None:
    assert load_config(None) == SoilnetConfig()


def test_overrides_are_typed_and_nested() -> None:
    cfg = load_config(None, ["demo.seed=7", "demo.width_km=12.5", "data.root=s3://bucket/ws"])
    assert cfg.demo.seed == 7 and cfg.demo.width_km == 12.5
    assert cfg.data.url("raster") == "s3://bucket/ws/raster.zarr"
    assert parse_overrides(["a.b.c=[1, 2]"]) == {"a": {"b": {"c": [1, 2]}}}


def test_unknown_key_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("demo:\n  width_kms: 10\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "demo.width_kms" in str(err.value) and str(path) in str(err.value)


def test_wrong_type_and_range_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"demo\.seed"):
        load_config(None, ["demo.seed=abc"])
    with pytest.raises(ConfigError, match=r"raster_layout\.inner_chunk"):
        load_config(None, ["raster_layout.inner_chunk=4"])
    with pytest.raises(ConfigError, match="multiple of inner_chunk"):
        load_config(None, ["raster_layout.shard=100", "raster_layout.inner_chunk=64"])


@pytest.mark.parametrize("pair", ["noequals", "=3", "demo..seed=1"])
def test_malformed_overrides(pair: str) -> None:
    with pytest.raises(ConfigError):
        load_config(None, [pair])


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("demo: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(top)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "unsafe.yaml"
    path.write_text("demo: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError):
        load_config(path)


@pytest.mark.parametrize("key", ["model.bundle", "map.model.bundle"])
def test_a_section_override_may_name_the_section_or_not(key):
    from soilnet.config import load_section
    from soilnet.mapping.config import MapConfig

    path = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "map.yaml"
    cfg = load_section(path, "map", MapConfig, [f"{key}=other/bundle", "map.batch_size=7"])
    assert (cfg.model.bundle, cfg.batch_size) == ("other/bundle", 7)
