"""Node loss in mapping, on a head and two worker nodes (tests/fixtures/multinode.py).

A lost worker node (the predictors' node, killed mid-map) costs only its tiles in flight: the run
finishes with every tile written once and bit-identical to an uninterrupted run, and says how many
tiles were redone. A lost head (the driver and the GCS with it) ends the run; running the job again on a
fresh cluster, as a KubeRay RayJob retry does, computes only the tiles without markers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from soilnet.mapping.job import MapRunResult, map_cube_url, run_map
from soilnet.mapping.manifest import read_markers
from tests.mapping.test_job import cube_bytes

pytestmark = [pytest.mark.multinode, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: Tiles of the map (240 m, 8 px tiles over the tiny demo) and how many are done when a node is killed.
TILES, KILL_AFTER = 16, 3
#: Each stage's actor takes a quarter CPU: all three fit on one surviving 1-CPU node.
ACTOR_CPUS = 0.25


def wait_for_markers(out: str, count: int, timeout_s: float = 240, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``count`` tiles are done (or the driver process ended, or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while len(read_markers(out)) < count and time.monotonic() < deadline and (proc is None or proc.poll() is None):
        time.sleep(0.05)


def test_lost_predictor_node_redoes_only_its_tiles(map_config, multinode_cluster, tmp_path) -> None:
    # one window per forward pass: the predictor is the slowest stage, most likely busy when its node goes
    reference = map_config(out=str(tmp_path / "reference"), batch_size=1)
    run_map(reference)
    cfg = map_config(executor="ray", out=str(tmp_path / "map"), cpus_per_actor=ACTOR_CPUS, batch_size=1)
    results: list[MapRunResult] = []
    run = threading.Thread(target=lambda: results.append(run_map(cfg)), daemon=True)
    run.start()
    try:
        wait_for_markers(cfg.out, KILL_AFTER)
        multinode_cluster.kill_node(multinode_cluster.node_of_actor("PredictStage"))
        assert len(read_markers(cfg.out)) < TILES, "the map finished before its predictors' node was killed"
    finally:
        run.join(timeout=300)  # never leave a map running into the next test
    assert results, "the map did not finish after losing a node"
    result = results[0]
    assert result.computed == sorted(set(result.computed)) and len(result.computed) == TILES
    assert result.writes == TILES  # every tile written once (a repeated write finds its marker and is skipped)
    # the tiles in flight there (none when the predictor was between tiles), never the whole map
    assert set(result.redone) < set(result.computed)
    manifest = json.loads((tmp_path / "map" / "manifest.json").read_text())
    assert manifest["redone"] == len(result.redone) and manifest["writes"] == TILES
    assert {m.run_id for m in read_markers(cfg.out).values()} == {manifest["run_id"]}
    assert cube_bytes(map_cube_url(cfg.out)) == cube_bytes(map_cube_url(reference.out))


def test_lost_head_rerun_resumes_from_tile_markers(map_config, multinode_cluster, tmp_path) -> None:
    reference = map_config(out=str(tmp_path / "reference"))
    run_map(reference)
    # the rerun waits out the dead driver's lease (its heartbeat stops with the head)
    cfg = map_config(
        executor="ray", out=str(tmp_path / "map"), cpus_per_actor=ACTOR_CPUS, lease_ttl_s=10.0, lease_wait_s=60.0
    )
    config_file = tmp_path / "map.yaml"
    config_file.write_text(yaml.safe_dump({"map": cfg.model_dump(mode="json")}))
    driver = subprocess.Popen(  # the RayJob's driver, on the head node
        [sys.executable, "-m", "jobs.map", "--config", str(config_file), "--no-publish"],
        cwd=ROOT,
        env={**os.environ, "SOILNET_PROGRESS": "0", "RAY_ADDRESS": multinode_cluster.address},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_markers(cfg.out, KILL_AFTER, proc=driver)
    multinode_cluster.kill_head()
    os.killpg(driver.pid, signal.SIGKILL)  # the driver goes with its node
    driver.wait()
    multinode_cluster.restart()  # KubeRay's retry: a new cluster; the orphaned workers are gone with the old one
    done = set(read_markers(cfg.out))
    assert KILL_AFTER <= len(done) < TILES, f"the head was not lost mid-map ({len(done)} tiles done)"
    multinode_cluster.connect()
    result = run_map(cfg)
    assert result.computed == sorted(set(read_markers(reference.out)) - done)  # exactly the tiles without markers
    assert cube_bytes(map_cube_url(cfg.out)) == cube_bytes(map_cube_url(reference.out))
