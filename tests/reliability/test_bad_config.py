"""Random configs and overrides never crash the loader with anything but `ConfigError` (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from soilnet.config import ConfigError, SoilnetConfig, load_config, parse_overrides

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every field of the config tree (sections are walked, lists and dicts are leaves)."""
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                paths += _field_paths(arg, path + ".")
    return paths


PATHS = _field_paths(SoilnetConfig)
NAMES = sorted({p.rsplit(".", 1)[-1] for p in PATHS})
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["s3://bucket/x", "EPSG:3035", "2020-01-31", "nearest", "../..", "generic", "lucas2018"]),
)
keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
trees = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=20
)


OVERRIDES = st.builds("{}={}".format, st.sampled_from(PATHS), st.text(max_size=20))


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cfg.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(path)
        except ConfigError as exc:
            assert str(path) in str(exc) or "YAML" in str(exc)


@FUZZ
@given(st.dictionaries(st.sampled_from(NAMES), trees, max_size=4))
def test_random_config_trees_give_a_config_or_a_config_error(tree):
    _load_text(yaml.safe_dump(tree, allow_unicode=True))


@FUZZ
@given(st.text(max_size=200))
def test_random_yaml_text_gives_a_config_or_a_config_error(text):
    _load_text(text.encode("utf-8", "replace").decode("utf-8"))


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=40), OVERRIDES), max_size=4))
def test_random_overrides_give_a_config_or_a_config_error(pairs):
    try:
        parse_overrides(pairs)
        load_config(None, pairs)
    except ConfigError as exc:
        assert str(exc)


@FUZZ
@given(st.sampled_from(PATHS), scalars)
def test_a_wrong_value_names_its_field(path, value):
    try:
        load_config(None, [f"{path}={yaml.safe_dump(value, default_flow_style=True, width=10**6).splitlines()[0]}"])
    except ConfigError as exc:
        problems = str(exc).rsplit("):\n", 1)[-1]
        assert path.split(".")[0] in problems


@pytest.mark.parametrize("pair", ["demo.width_km=.inf", "demo.west=.nan", "ingest.raster.resolution=.inf"])
def test_non_finite_numbers_are_rejected(pair):
    with pytest.raises(ConfigError, match=pair.split("=")[0].replace(".", r"\.")):
        load_config(None, [pair])
