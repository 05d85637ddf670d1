"""finetune.targets (C1): the one-target shorthand, the primary target, depths and their errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from soilnet.data.targets import TargetSpec
from soilnet.training.config import FinetuneConfig


def test_target_shorthand_and_primary_target() -> None:
    assert FinetuneConfig().targets == ["soc_g_kg"] and FinetuneConfig().target == "soc_g_kg"
    assert FinetuneConfig(target="ph_h2o").targets == ["ph_h2o"]
    cfg = FinetuneConfig(targets=[{"name": "permafrost", "weight": 2}, "soc_g_kg"], depths=[[0, 20], [20, 50]])
    assert cfg.target == "permafrost" and cfg.depths == [(0.0, 20.0), (20.0, 50.0)]
    assert cfg.target_specs == [TargetSpec(name="permafrost", weight=2.0), TargetSpec(name="soc_g_kg")]
    assert cfg.target_specs[0].resolved_kind == "binary" and cfg.target_specs[1].resolved_kind == "continuous"
    again = FinetuneConfig.model_validate(cfg.model_dump(mode="json"))  # a dumped config loads back
    assert again == cfg


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target": "soc_g_kg", "targets": ["ph_h2o"]}, "finetune.target 'soc_g_kg' differs from the first"),
        ({"targets": ["soc_g_kg", "soc_g_kg"]}, "lists a column twice"),
        ({"depths": [[20, 0]]}, r"\[20.0, 0.0\] is not an interval"),
        ({"depths": [[0, 20], [0, 20]]}, "lists an interval twice"),
        ({"depths": []}, "finetune.depths is empty"),
        ({"targets": [{"name": "soc_g_kg", "weight": 0}]}, "greater than 0"),
    ],
)
def test_bad_targets_are_named(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FinetuneConfig(**fields)
