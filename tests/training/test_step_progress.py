"""One bar per training stage in the driver, moved by the steps rank 0 of the workers reports."""

from __future__ import annotations

import time

import pytest

from soilnet.training.step_progress import step_bar


@pytest.mark.slow
def test_the_bar_counts_the_steps_rank_0_reports_from_other_processes(ray_local, monkeypatch, capsys) -> None:
    import ray

    monkeypatch.setenv("SOILNET_PROGRESS", "1")

    @ray.remote(num_cpus=0)
    def worker(on_step, rank: int) -> None:
        for step in range(1, 6):
            on_step(rank, step)

    with step_bar("pretrain", poll_s=0.05) as on_step:
        assert on_step is not None
        ray.get([worker.remote(on_step, 0), worker.remote(on_step, 1)])  # two workers, five steps each
        deadline = time.monotonic() + 30
        while ray.get(on_step.counter.count.remote()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        counted = ray.get(on_step.counter.count.remote())
    assert counted == 5  # rank 0's steps only
    err = capsys.readouterr().err
    assert "pretrain" in err and "5step" in err.replace(" ", "")


def test_no_bar_no_actor_when_progress_is_off(monkeypatch) -> None:
    monkeypatch.setenv("SOILNET_PROGRESS", "0")
    with step_bar("pretrain") as on_step:
        assert on_step is None
