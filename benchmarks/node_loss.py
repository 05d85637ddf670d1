"""Node loss on a three-node Ray cluster on this machine: the stall it causes and what it costs, training and map.

Each half runs on its own `tests.fixtures.multinode.MultiNodeCluster` (a head and worker nodes ``node_a`` and
``node_b``, each with its own temp and spill folders; the GCS declares a silent node dead after 3 s):

- training (`node_loss_train.measure_training`): a worker node killed mid-epoch of an elastic fine-tuning run;
  the stall from the kill to the next completed optimiser step and the samples lost (counted per epoch).
- map (`map_half`): a generated region mapped by the Ray pipeline with the tiny ensemble of
  `tests.fixtures.tiny_models`; once some tiles are done the node running the predictor actor is killed
  (SIGKILL to its raylet and every process, its folders deleted). The stall runs from the kill to the next
  tile finished (done markers polled every 20 ms); tiles lost are tiles without a marker at the end;
  identical compares every file of the map cube with an in-process run of the same map.

    python benchmarks/node_loss.py [--quick]

The last line holds the key figures. Stalls are wall times on a shared 2-core machine: say "under load".
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from soilnet.data.demo_region import DemoConfig, DemoPaths, generate_demo_region
from soilnet.data.raster_cube import RasterLayout
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.job import MapRunResult, map_cube_url, run_map
from soilnet.mapping.manifest import read_markers
from tests.fixtures.multinode import MultiNodeCluster
from tests.fixtures.tiny_models import save_tiny_bundle
from tests.mapping.test_job import cube_bytes

#: Seconds between reads of the done markers while waiting for the next tile.
POLL_S = 0.02
#: Share of the tiles done when the predictors' node is killed.
KILL_AT = 0.25


@dataclass(frozen=True)
class MapHalf:
    """The map half's figures."""

    stall_s: float
    tiles_lost: int
    identical: bool
    redone: int
    tiles: int
    seconds: float


def map_config(root: Path, out: str, executor: str, quick: bool) -> MapConfig:
    """The benchmark's map: a generated region (6 km quick, 12 km full; made once) at 240 m in 8 px tiles."""
    size_km = 6.0 if quick else 12.0
    paths = DemoPaths(str(root / "region"))
    if not (root / "bundle").exists():
        region = DemoConfig(width_km=size_km, height_km=size_km, n_points=50, seed=3)
        generate_demo_region(region, paths.root, RasterLayout(inner_chunk=32, shard=128))
        save_tiny_bundle(str(root / "bundle"))
    return MapConfig(
        raster=paths.raster,
        climate=paths.climate,
        out=str(root / out),
        model=ModelSourceConfig(bundle=str(root / "bundle")),
        climate_end="2018-06",
        resolution_m=240,
        tile_px=8,
        chunk_px=8,
        batch_size=64,
        executor=executor,
        cpus_per_actor=0.25,  # the three stages' actors fit on one surviving 1-CPU node
    )


def map_half(cluster: MultiNodeCluster, root: Path, quick: bool) -> MapHalf:
    """Kill the predictors' node mid-map; the stall to the next finished tile, tiles lost, identical bytes."""
    reference = map_config(root, "reference", "local", quick)
    run_map(reference)
    cfg = map_config(root, "map", "ray", quick)
    results: list[MapRunResult] = []
    run = threading.Thread(target=lambda: results.append(run_map(cfg)), daemon=True)
    run.start()
    total = len(read_markers(reference.out))
    while len(read_markers(cfg.out)) < max(1, int(total * KILL_AT)) and run.is_alive():
        time.sleep(POLL_S)
    killed_at = cluster.kill_node(cluster.node_of_actor("PredictStage"))
    done_at_kill = len(read_markers(cfg.out))
    while len(read_markers(cfg.out)) <= done_at_kill and run.is_alive():
        time.sleep(POLL_S)
    stall = time.monotonic() - killed_at
    run.join()
    if not results:
        raise SystemExit("the map run failed after the node loss (see its log above)")
    result = results[0]
    lost = total - len(read_markers(cfg.out))
    identical = cube_bytes(map_cube_url(cfg.out)) == cube_bytes(map_cube_url(reference.out))
    print(
        f"map: {total} tiles, predictors' node killed with {done_at_kill} done; next tile {stall:.1f} s later; "
        f"{len(result.redone)} tiles redone, {result.writes} writes, {result.rewrites_skipped} repeated writes "
        f"skipped; run {result.seconds:.0f} s; identical={'yes' if identical else 'no'}"
    )
    return MapHalf(stall, lost, identical, len(result.redone), total, result.seconds)


def train_figures(quick: bool) -> tuple[float, int]:
    """The training half's stall and samples lost (on its own cluster, S3 server and MLflow file)."""
    from node_loss_train import measure_training

    figures = measure_training(quick)
    print(f"training: stall {figures['train_stall_s']:.1f} s, {figures['samples_lost']} samples lost")
    return float(figures["train_stall_s"]), int(figures["samples_lost"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 map tiles (6 x 6 km); under 2 minutes unloaded.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    start, cpu = time.perf_counter(), time.process_time()
    train_stall, samples_lost = train_figures(args.quick)
    with tempfile.TemporaryDirectory(prefix="nl-", dir="/tmp") as tmp:  # short: Unix socket paths live under it
        root = Path(tmp)
        cluster = MultiNodeCluster(root / "c")
        try:
            cluster.start().connect()
            half = map_half(cluster, root, args.quick)
        finally:
            cluster.shutdown()
    print(f"{time.perf_counter() - start:.0f} s wall (under load), driver CPU {time.process_time() - cpu:.0f} s")
    ok = samples_lost == 0 and half.tiles_lost == 0 and half.identical
    print(
        f"NODE_LOSS: train_stall_s={train_stall:.1f} map_stall_s={half.stall_s:.1f} "
        f"samples_lost={samples_lost} tiles_lost={half.tiles_lost} "
        f"identical={'yes' if half.identical else 'no'} (target: samples_lost=0 tiles_lost=0 identical=yes)"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
