"""A progress bar in the driver for the optimiser steps the Ray Train workers take: one bar per training stage.

The workers run in other processes, so they report each step (rank 0 only) to a small counter actor;
a thread of the driver reads it twice a second and moves the bar. Quiet where `soilnet.progress` is
(not a terminal, or ``SOILNET_PROGRESS=0``): then no actor and no thread are started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

from soilnet.progress import enabled
from soilnet.training.loop import StepCallback
from soilnet.training.trainer import ensure_ray


class _StepCounter:
    """Steps reported so far (a Ray actor)."""

    def __init__(self) -> None:
        self.steps = 0

    def add(self) -> None:
        """One more optimiser step."""
        self.steps += 1

    def count(self) -> int:
        """Steps so far."""
        return self.steps


class StepReporter:
    """The workers' step callback: rank 0 counts each optimiser step (picklable, it travels with the spec)."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def __call__(self, rank: int, step: int) -> None:
        if rank == 0:
            self.counter.add.remote()


@contextmanager
def step_bar(desc: str, poll_s: float = 0.5) -> Iterator[StepCallback | None]:
    """A bar labelled `desc` counting the steps reported through the yielded callback (None when bars are off)."""
    if not enabled():
        yield None
        return
    import ray

    ensure_ray()
    counter = ray.remote(num_cpus=0)(_StepCounter).remote()
    # drawn on every update (the thread updates at most every poll_s), so the final count is always shown
    bar = tqdm(desc=desc, unit="step", leave=False, dynamic_ncols=True, mininterval=0)
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(poll_s):
            bar.update(ray.get(counter.count.remote()) - bar.n)

    thread = threading.Thread(target=follow, name=f"bar {desc}", daemon=True)
    thread.start()
    try:
        yield StepReporter(counter)
    finally:
        stop.set()
        thread.join()
        bar.update(ray.get(counter.count.remote()) - bar.n)
        bar.close()
        ray.kill(counter)
