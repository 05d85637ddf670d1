"""Ray Data's own progress reporting stays out of soilnet's output (one bar per stage is soilnet's)."""

from __future__ import annotations

import logging

import pytest

from soilnet.logs import quiet_ray_data


@pytest.mark.slow
def test_ray_data_runs_without_its_progress_blocks(ray_local, capfd, monkeypatch) -> None:
    import ray
    from ray.data import DataContext

    monkeypatch.delenv("SOILNET_RAY_DATA_PROGRESS", raising=False)
    quiet_ray_data()
    assert DataContext.get_current().enable_progress_bars is False
    assert logging.getLogger("ray.data").getEffectiveLevel() == logging.WARNING
    total = ray.data.range(64, override_num_blocks=4).map_batches(lambda b: {"id": b["id"] * 2}).sum("id")
    assert total == 2 * sum(range(64))
    out, err = capfd.readouterr()
    for line in ("Running Dataset", "Total Progress", "Progress bars disabled", "Starting execution"):
        assert line not in out + err
