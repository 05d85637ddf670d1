"""Projection from measured rates: stage hours add up, GPUs divide them, assumed figures are labelled."""

from __future__ import annotations

import pytest

from soilnet.mapping.job import prepare_map
from soilnet.mapping.projection import MeasuredRates, load_rates, project, projection_facts, save_rates

RATES = MeasuredRates(
    source="test",
    read_decode_bytes_per_core_s=50e6,
    write_px_per_s=2e6,
    tile_overhead_s=0.05,
    cpu_predict_px_per_core_s=900.0,
)


def test_projection_follows_the_slowest_stage_and_scales_with_gpus(map_config, tmp_path) -> None:
    plan = prepare_map(map_config(), create=False).plan
    one = project(plan, RATES, 1, 8, 989.0, 0.4, 4.0)
    assert one.read_h == pytest.approx(plan.input_bytes / (50e6 * 8) / 3600)
    assert one.write_h == pytest.approx(plan.output_px / 2e6 / 3600)
    assert one.gpu_px_per_s == pytest.approx(989e12 * 0.4 / plan.flops_per_pixel) and not one.gpu_measured
    assert one.wall_h == pytest.approx(max(one.read_h, one.predict_h, one.write_h) + 16 * 0.05 / 3600)
    eight = project(plan, RATES, 8, 8, 989.0, 0.4, 4.0)
    assert eight.wall_h == pytest.approx(one.wall_h / 8)
    assert eight.cost_usd == pytest.approx(one.cost_usd)  # the same GPU-hours
    measured = project(plan, RATES.model_copy(update={"gpu_px_per_s": 1e3}), 1, 8, 989.0, 0.4, 4.0)
    assert measured.gpu_measured and measured.bound == "predict"
    facts = projection_facts(one, RATES, 989.0, 0.4)
    assert facts["predict"].startswith("ASSUMED") and "40% of 989 TFLOP/s" in facts["predict"]
    assert facts["read + decode"].startswith("measured") and facts["write"].startswith("measured")
    save_rates(RATES, tmp_path / "rates.json")
    assert load_rates(tmp_path / "rates.json") == RATES
    with pytest.raises(FileNotFoundError, match=r"benchmarks/scale\.py"):
        load_rates(tmp_path / "none.json")
