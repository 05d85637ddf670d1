"""The map's model: found in the workspace's registry like the demo registers it, and checked against map.targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.model_card import read_model_card, registry_of, resolve_registry
from soilnet.mapping.model_source import load_ensemble
from soilnet.tracking.lookups import NotFoundError
from tests.fixtures.registry import register_tiny_champion


def _map(workspace: Path, bundle: str, **extra) -> MapConfig:
    return MapConfig(
        raster=str(workspace / "raster.zarr"),
        climate=str(workspace / "climate.zarr"),
        out=str(workspace / "runs" / "map"),
        model=ModelSourceConfig(bundle=bundle),
        climate_end="2018-06",
        resolution_m=240,
        **extra,
    )


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace whose SQLite registry holds a SOC champion, registered like `soilnet demo` does."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert register_tiny_champion(tmp_path).model == "soilnet-soc_g_kg"
    return tmp_path


def test_a_registered_champion_is_found_in_the_workspace_registry(registered):
    cfg = resolve_registry(_map(registered, "models:/soilnet-soc_g_kg@champion"))
    assert cfg.model.registry == f"sqlite:///{registered / 'mlruns.db'}"
    model = read_model_card(cfg.model, targets=cfg.targets)
    direct = read_model_card(ModelSourceConfig(bundle=str(registered / "runs" / "finetune" / "bundle")))
    assert model.content_hash == direct.content_hash
    assert load_ensemble(cfg.model, device="cpu", targets=cfg.targets).bands == direct.bands


def test_an_unknown_name_or_alias_names_what_the_registry_holds(registered):
    cfg = resolve_registry(_map(registered, "models:/soilnet@champion"))
    with pytest.raises(NotFoundError, match=r"no registered model 'soilnet' in sqlite:.*; registered: soilnet-soc"):
        load_ensemble(cfg.model, device="cpu")
    cfg = resolve_registry(_map(registered, "models:/soilnet-soc_g_kg@gold"))
    with pytest.raises(NotFoundError, match="has no alias 'gold'; aliases: champion"):
        load_ensemble(cfg.model, device="cpu")


def test_a_model_of_other_targets_is_refused(tiny_model):
    with pytest.raises(ValueError, match=r"predicts \['soc_g_kg'\], but map.targets is \['ph_h2o'\]"):
        load_ensemble(tiny_model, device="cpu", targets=["ph_h2o"])


def test_without_a_registry_the_error_says_where_to_set_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = _map(tmp_path, "models:/soilnet-soc_g_kg@champion")
    with pytest.raises(ValueError, match=r"set map.model.registry, .*there is no .*mlruns.db"):
        registry_of(cfg)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert registry_of(cfg) == "http://mlflow:5000"
    assert registry_of(cfg.model_copy(update={"mlflow_tracking_uri": "http://other"})) == "http://other"
