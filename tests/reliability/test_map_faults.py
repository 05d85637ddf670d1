"""Faults during the map job: its S3 store stopped for seconds or for good while tiles are written, its driver killed.

Each run is compared byte for byte with an uninterrupted run on local disk, and every tile write is counted,
so a resumed map that lost a tile, wrote a finished tile again, or marked a half-written tile done fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from soilnet import storage
from soilnet.data.zarr_group import CubeValidationError
from soilnet.demo.map_stage import demo_map_config
from soilnet.mapping.config import MapConfig
from soilnet.mapping.job import map_cube_url, run_map
from soilnet.mapping.manifest import read_markers
from soilnet.mapping.map_cube import MapCube, open_map_cube
from soilnet.storage import StorageError

pytestmark = pytest.mark.slow

#: Seconds the endpoint stays down: a store pod restarting, a load balancer failing over.
OUTAGE_S = 3.0
SOILNET = Path(sys.executable).with_name("soilnet")


@pytest.fixture(scope="module")
def config(tiny_demo, tiny_bundle_url: str) -> Callable[..., MapConfig]:
    """Map configs over the tiny demo: the demo's settings with 8 px tiles (16 tiles at 240 m), in-process."""

    def make(out: str, **overrides: object) -> MapConfig:
        demo = demo_map_config(
            tiny_demo.raster, tiny_demo.climate, tiny_demo.region, out, tiny_bundle_url, 240.0, None, "local"
        )
        fields = {"tile_px": 8, "chunk_px": 8, "batch_size": 64, "cpus_per_actor": 0.5, **overrides}
        return MapConfig.model_validate({**demo.model_dump(), **fields})

    return make


def stored_bytes(url: str) -> dict[str, bytes]:
    """Every object of a map cube (local or s3://) by path relative to the cube."""
    loc = storage.resolve(url)
    loc.fs.invalidate_cache()
    return {path[len(loc.path) :]: loc.fs.cat_file(path) for path in sorted(loc.fs.find(loc.path))}


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:
    """The map cube URL of an uninterrupted local run (computed on first use, once per module)."""
    done: list[str] = []

    def get() -> str:
        if not done:
            done.append(run_map(config(str(tmp_path_factory.mktemp("reference") / "map"))).map_url)
        return done[0]

    return get


def count_tile_writes(monkeypatch: pytest.MonkeyPatch, fault: Callable[[int], None] | None = None) -> list[str]:
    """Record the origin of every tile write into a map cube; ``fault(n)`` runs before the n-th write (from 1)."""
    writes: list[str] = []
    original = MapCube.write_tile

    def counting(self: MapCube, row0: int, col0: int, *layers: np.ndarray) -> None:
        if fault is not None:
            fault(len(writes) + 1)
        original(self, row0, col0, *layers)
        writes.append(f"{row0},{col0}")

    monkeypatch.setattr(MapCube, "write_tile", counting)
    return writes


def test_map_writes_ride_out_an_outage(config, reference, restartable_s3, monkeypatch) -> None:
    cfg = config(f"{restartable_s3.bucket()}/maps/tiny")

    def outage(n: int) -> None:
        if n == 5:  # the run writes each tile once: one outage
            restartable_s3.outage(OUTAGE_S)

    writes = count_tile_writes(monkeypatch, outage)
    result = run_map(cfg)
    restartable_s3.wait_up()
    assert len(result.computed) == result.tiles == 16
    assert sorted(writes) == sorted(set(writes)) and len(writes) == 16  # every tile written once
    assert stored_bytes(result.map_url) == stored_bytes(reference())


def test_map_into_a_store_that_stays_down_fails_then_resumes_without_loss(
    config, reference, restartable_s3, monkeypatch
) -> None:
    bucket = restartable_s3.bucket()
    cfg = config(f"{bucket}/maps/tiny")
    monkeypatch.setenv("SOILNET_S3_MAX_ATTEMPTS", "1")

    def kill(n: int) -> None:
        if n == 6 and not stopped:
            stopped.append(n)
            restartable_s3.stop()

    stopped: list[int] = []

    writes = count_tile_writes(monkeypatch, kill)
    with pytest.raises(StorageError) as err:
        run_map(cfg)
    assert f"{bucket}/maps/tiny/map.zarr" in str(err.value)
    assert "rows 8:16, cols 8:16" in str(err.value)  # the tile being written when the store went away

    restartable_s3.start()
    monkeypatch.delenv("SOILNET_S3_MAX_ATTEMPTS")
    url = map_cube_url(cfg.out)
    with pytest.raises(CubeValidationError, match="incomplete map_cube"):
        open_map_cube(url)  # the half-written map never reads as finished
    done = read_markers(cfg.out)
    assert len(done) == len(writes) == 5
    partial, complete = open_map_cube(url, writable=True), open_map_cube(reference())
    for name in done:  # a tile marked done holds all its data
        row, col = (int(v) * 8 for v in re.fullmatch(r"r(\d+)_c(\d+)", name).groups())  # type: ignore[union-attr]
        for layer in complete.layers:
            np.testing.assert_array_equal(
                partial.read(layer, row, col, 8, 8), complete.read(layer, row, col, 8, 8), err_msg=f"{name} {layer}"
            )

    writes.clear()
    result = run_map(cfg)
    assert len(writes) == len(set(writes)) == 16 - len(done)  # no finished tile written again
    assert set(result.computed).isdisjoint(done) and len(result.computed) + len(done) == 16  # none missing
    assert stored_bytes(url) == stored_bytes(reference())


def _descendants(root: int) -> set[int]:
    """Process ids below ``root`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        children = {pid for pid, ppid in parents.items() if ppid == parent} - found
        found |= children
        frontier += children
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


#: Ray's per-node agents, which outlive a killed driver by up to a minute (they poll for the raylet) but write nothing.
RAY_AGENTS = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def test_killed_ray_driver_resumes_to_identical_bytes(config, reference, tmp_path) -> None:
    # actors refuse after ttl / 2 without a heartbeat: 5 s tolerates a loaded machine
    cfg = config(str(tmp_path / "map"), executor="ray", lease_ttl_s=10.0, lease_wait_s=60.0)
    config_file = tmp_path / "map.yaml"
    config_file.write_text(yaml.safe_dump({"map": cfg.model_dump(mode="json")}))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [str(SOILNET), "map", "run", "--config", str(config_file), "--no-publish"],
        env={**env, "SOILNET_PROGRESS": "0", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ray_processes: set[int] = set()
    deadline = time.monotonic() + 300
    while len(read_markers(cfg.out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        ray_processes |= _descendants(proc.pid)
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone, as the OOM killer or a lost node would
    proc.wait()
    try:
        writers = ray_processes
        for _ in range(300):  # the killed driver's raylet and actors notice and exit by themselves
            writers = {pid for pid in _alive(ray_processes) if _name(pid) not in RAY_AGENTS}
            if not writers:
                break
            time.sleep(0.1)
        assert not writers, f"processes of the killed job still running: {[_name(p) for p in writers]}"
        done = read_markers(cfg.out)  # final: no writer of the killed run is left
        assert 3 <= len(done) < 16, f"the driver was not killed mid-run ({len(done)} tiles done)"
        with pytest.raises(CubeValidationError, match="incomplete map_cube"):
            open_map_cube(map_cube_url(cfg.out))
        # resume in-process once the dead run's lease is stale (the tiles the Ray actors finished must equal the
        # local reference bit for bit)
        result = run_map(cfg.model_copy(update={"executor": "local"}))
        assert set(result.computed).isdisjoint(done) and len(result.computed) + len(done) == 16
        assert stored_bytes(result.map_url) == stored_bytes(reference())
    finally:
        for pid in _alive(ray_processes):  # the agents (and anything left after a failure) end here
            os.kill(pid, signal.SIGKILL)
