"""Saving and loading weights: identical outputs after reload, local and on S3; no pickled code."""

import ast
import io
import pickle
from pathlib import Path

import pytest
import torch

from soilnet import storage
from soilnet.models.checkpoint import load_weights, read_state_dict, save_weights

PACKAGE = Path(__file__).resolve().parents[2] / "soilnet"


def test_save_and_reload_gives_identical_outputs(recipe, sample_batch, tmp_path) -> None:
    tiny = recipe("soilnet-tiny")
    model = tiny.build_model().eval()
    image, climate = sample_batch(tiny)
    url = str(tmp_path / "ckpt" / "model.safetensors")
    save_weights(model, url)
    torch.manual_seed(1)
    other = tiny.build_model().eval()
    assert not torch.equal(other(image, climate)["prediction"], model(image, climate)["prediction"])
    load_weights(other, url)
    for key, value in model(image, climate).items():
        assert torch.equal(other(image, climate)[key], value)


def test_save_and_reload_on_object_storage(recipe, sample_batch, s3_bucket) -> None:
    tiny = recipe("ssl-soilnet-tiny")
    model = tiny.build_model().eval()
    image, climate = sample_batch(tiny)
    url = storage.join(s3_bucket, "runs", "model.safetensors")
    save_weights(model, url)
    torch.manual_seed(1)
    other = tiny.build_model().eval()
    load_weights(other, url)
    assert torch.equal(other(image, climate)["prediction"], model(image, climate)["prediction"])


def test_torch_state_dicts_load_with_weights_only(tmp_path) -> None:
    good = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, good)
    assert torch.equal(read_state_dict(good)["w"], torch.ones(2))
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "obj": io.BytesIO(b"code")}, evil)
    with pytest.raises(pickle.UnpicklingError, match=r"[Ww]eights only load failed"):
        read_state_dict(evil)


def test_mismatched_weights_name_the_file(recipe, tmp_path) -> None:
    url = str(tmp_path / "other.safetensors")
    save_weights(recipe("ssl-soilnet-tiny").build_model(), url)
    with pytest.raises(ValueError, match=r"other\.safetensors: weights do not fit"):
        load_weights(recipe("soilnet-tiny").build_model(), url)
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        load_weights(recipe("soilnet-tiny").build_model(), str(tmp_path / "missing.safetensors"))


def test_package_calls_torch_load_only_with_weights_only() -> None:
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "load"
                and isinstance(func.value, ast.Name)
                and func.value.id == "torch"
            ):
                safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords)
                calls.append((f"{path}:{node.lineno}", safe))
    assert calls, "expected at least the checkpoint reader to call torch.load"
    assert [where for where, safe in calls if not safe] == []
