"""Planning: tile count, area, input bytes and FLOPs (dense cheaper than windows at a stride)."""

from __future__ import annotations

import pytest

from soilnet.mapping.job import prepare_map
from soilnet.mapping.model_source import load_ensemble
from soilnet.mapping.plan import flops_per_pixel


def test_plan_counts_tiles_area_and_bytes(map_config) -> None:
    plan = prepare_map(map_config(), create=False).plan
    assert len(plan.tiles) == 16
    assert plan.area_km2 == pytest.approx(36.0)  # the region is the 6 x 6 km cube
    # tiles of 64 input px read (7 * 8 + 32) = 88 px a side (clipped at the cube edge) of 14 int16 bands
    cube_bytes = 200 * 200 * 14 * 2
    assert 1.5 * cube_bytes < plan.input_bytes < (88 / 64) ** 2 * cube_bytes
    facts = plan.facts(8)
    assert facts["tiles"] == "16 of 8 px" and "time on 8 GPU(s)" in facts
    assert plan.hours_on(8) == pytest.approx(plan.hours_on(1) / 8)


def test_dense_mode_needs_fewer_flops(tiny_model) -> None:
    model = load_ensemble(tiny_model, device="cpu")
    windows, dense = flops_per_pixel(model, 8, "windows"), flops_per_pixel(model, 8, "dense")
    assert 0 < dense < windows


def test_checkpoint_source_equals_bundle(tiny_checkpoint, tiny_model) -> None:
    a, b = load_ensemble(tiny_checkpoint, device="cpu"), load_ensemble(tiny_model, device="cpu")
    assert a.content_hash() == b.content_hash() and a.patch == 32 and a.months == 12


def test_unknown_bundle_is_a_clear_error(tmp_path) -> None:
    from soilnet.mapping.config import ModelSourceConfig

    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        load_ensemble(ModelSourceConfig(bundle=str(tmp_path)), device="cpu")
