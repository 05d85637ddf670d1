"""The model card: what the map driver knows of its model without loading it, and a driver free of torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from soilnet.mapping.config import ModelSourceConfig
from soilnet.mapping.model_card import read_model_card
from soilnet.mapping.model_source import load_ensemble


def test_the_card_describes_the_loaded_model(tiny_model, tiny_checkpoint) -> None:
    for source in (tiny_model, tiny_checkpoint):
        card, model = read_model_card(source), load_ensemble(source, device="cpu")
        assert (card.bands, card.variables, card.patch, card.months) == (
            model.bands,
            model.variables,
            model.patch,
            model.months,
        )
    assert read_model_card(tiny_model).targets == ["soc_g_kg"]


def test_the_hash_follows_every_file_of_the_bundle(tiny_model, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(str(tiny_model.bundle), copy)
    source = ModelSourceConfig(bundle=str(copy))
    before = read_model_card(source).content_hash
    assert read_model_card(tiny_model).content_hash == before  # the same files, another folder
    (copy / "conformal.json").write_text("{}")  # calibration data beside the weights changes the map too
    with_calibration = read_model_card(source).content_hash
    weights = next(copy.glob("fold_*.safetensors"))
    payload = bytearray(weights.read_bytes())
    payload[-1] ^= 1
    weights.write_bytes(bytes(payload))
    assert len({before, with_calibration, read_model_card(source).content_hash}) == 3


def test_a_model_of_other_targets_or_no_bundle_is_refused(tiny_model, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"predicts \['soc_g_kg'\], but map.targets is \['ph_h2o'\]"):
        read_model_card(tiny_model, targets=["ph_h2o"])
    with pytest.raises(FileNotFoundError, match=r"is not a model bundle: meta\.json is missing"):
        read_model_card(ModelSourceConfig(bundle=str(tmp_path)))
    (tmp_path / "meta.json").write_text(json.dumps({"targets": ["soc_g_kg"]}))
    with pytest.raises(ValueError, match=r"meta.json: not valid bundle metadata: KeyError\('patch_px'\)"):
        read_model_card(ModelSourceConfig(bundle=str(tmp_path)))


def test_the_map_driver_never_imports_torch(map_config, tmp_path: Path) -> None:
    """Selecting and planning the tiles of a bundle's map (what a run's driver does) leaves torch unloaded."""
    cfg = tmp_path / "map.json"
    cfg.write_text(map_config().model_dump_json())
    script = textwrap.dedent(
        f"""
        import sys
        from soilnet.mapping.config import MapConfig
        from soilnet.mapping.job import changed_tiles
        cfg = MapConfig.model_validate_json(open({str(cfg)!r}).read())
        print(len(list(changed_tiles(cfg))), sorted(m for m in ("torch", "timm", "mlflow") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["16", "[]"]
