"""Scale rehearsal: a 1e8-pixel region through every stage of the nightly job, measured stage by stage.

Stages, as the nightly job runs them, on local disk (``--s3``: cubes and map on the loopback S3 endpoint, a moto
server in its own process that counts every request and byte it serves, from whichever process):

1. ``generate``: a 30 m raster cube of N x N px written shard by shard, streamed (never whole in
   memory) from `soilnet.data.landsat_texture` (compresses like real Landsat-8 SR, printed), a 4 km
   climate cube (the region is the whole cube), the tiny ensemble of `tests.fixtures.tiny_models`;
2. ``map``: the map job at 240 m on local Ray (reader, predictor and writer actors; ``--mode dense`` by default,
   one encoder pass per tile, so the rehearsal fits a small machine), driven, like every map stage, by its own
   driver process (as ``soilnet map run`` or the nightly job's pod), connected to the benchmark's Ray cluster;
3. ``publish``: COGs, STAC items and the preview;
4. ``nightly-same``: the map job again with nothing changed;
5. ``nightly-changed``: one shard rewritten through the cube writer (as an ingest would), then the map job;
6. ``fresh-tiles``: the recomputed tiles computed afresh in-process, to check the incremental map bit for bit
   (a full run computes each tile on its own with the same stages; `tests/mapping/test_job.py` compares a
   whole incremental map with a whole full run).

Figures per stage (definitions used throughout):

- ``wall``: seconds; ``cpu``: user + system CPU-seconds of the driver and every process below it (Ray's
  workers), sampled every 0.25 s;
- ``read`` / ``written``: bytes returned by / handed to storage (every Zarr store get, byte range and set;
  every fsspec file read and write) in the driver and in every Ray worker (counting hooks installed with
  ``worker_process_setup_hook``); ``input read`` is the part under the raster and climate cubes;
  ``disk written``: bytes written by system calls (``/proc/<pid>/io`` wchar), which also covers GDAL;
- ``requests``: storage requests (one per Zarr key or byte range, one per file opened);
- ``driver`` / ``actor`` peak: peak resident memory of the driver and of the largest Ray actor (VmRSS sampled);
  for the map stages the driver is the map job's own process and its peak is its high-water mark (VmHWM),
  for the other stages it is the benchmark's process, which does their work.

The rates a map is made of (input bytes read and decoded per reader CPU-second and output pixels written
per writer CPU-second, actor start-up excluded; seconds per tile the driver spends selecting every tile
from metadata, the run's start-up excluded) are saved to ``benchmarks/results/scale_rates.json`` for
``soilnet map plan --gpus N``, and the projection table for Europe and the contiguous US is printed from
metadata-only continents.

    python benchmarks/scale.py [--quick] [--size PX] [--keep DIR]

Last line: ``SCALE: pixels=N map_px_per_core_s=R nightly_read_fraction=F changed_tiles_exact=yes|no
driver_peak_mib=M`` with ``map_px_per_core_s`` = input (30 m) pixels mapped per CPU-second of the map stage.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from s3_server import counts_between, start_s3

from soilnet import storage
from soilnet.data.bands import BAND_NAMES
from soilnet.data.climate_cube import create_climate_cube, finish_climate_cube, month_starts, write_climate_block
from soilnet.data.grid import Grid
from soilnet.data.ingest.raster import run_bounded
from soilnet.data.landsat_texture import compression_ratio, landsat_raw, landsat_tile
from soilnet.data.raster_cube import RasterCubeWriter, create_raster_cube, open_raster_cube
from soilnet.data.region import Tile
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.job import MapRunResult, prepare_map, run_map
from soilnet.mapping.map_cube import open_map_cube
from soilnet.mapping.outputs import export_outputs
from soilnet.mapping.stages import MapJobSpec, PredictStage, ReadStage, tile_row
from tests.fixtures.continents import CONUS, EUROPE, empty_continent

if TYPE_CHECKING:  # projection (through the plan's FLOP counter) and the tiny models import torch: the map
    from soilnet.mapping.projection import MeasuredRates  # stages' driver processes import this module

MIB = 2**20
RATES = Path(__file__).resolve().parent / "results" / "scale_rates.json"
#: The production recipe whose FLOPs the projection counts.
RECIPE = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "recipes" / "soilnet.yaml"
IO_DIR_ENV, INPUTS_ENV = "SCALE_IO_DIR", "SCALE_INPUT_ROOTS"
#: Output resolution, tile side (output px) and the shard rewritten for the third night (shard row, col).
RESOLUTION_M, TILE_PX, CHANGED_SHARD = 240.0, 128, (2, 3)
#: Tries to start the local Ray cluster (its raylet has a fixed 30 s window, which a crowded machine can miss).
START_ATTEMPTS = 10
#: Where ``--s3`` puts cubes and map (the bucket `s3_server.start_s3` creates).
S3_ROOT = "s3://bench/scale"


def install_io_counters() -> None:
    """Count storage reads, writes and requests of this process into ``$SCALE_IO_DIR/<pid>.json``.

    Installed in the driver and, through Ray's ``worker_process_setup_hook``, in every Ray worker.
    """
    import fsspec.implementations.local as local
    import zarr.storage

    io_dir = os.environ.get(IO_DIR_ENV)
    if not io_dir or getattr(zarr.storage.LocalStore, "_scale_counted", False):
        return
    inputs = tuple(r for r in os.environ.get(INPUTS_ENV, "").split(os.pathsep) if r)
    counts = {"read": 0, "written": 0, "requests": 0, "input_read": 0, "input_requests": 0}
    lock, target = threading.Lock(), os.path.join(io_dir, f"{os.getpid()}.json")

    def note(kind: str, where: str, n: int) -> None:
        with lock:
            counts["requests"] += 1
            counts[kind] += n
            if kind == "read" and where.startswith(inputs):
                counts["input_read"] += n
                counts["input_requests"] += 1
            tmp = f"{target}.tmp"
            with open(tmp, "w") as f:
                json.dump(counts, f)
            os.replace(tmp, target)

    get, partial, put = (
        zarr.storage.LocalStore.get,
        zarr.storage.LocalStore.get_partial_values,
        zarr.storage.LocalStore.set,
    )

    async def counted_get(self, key, prototype=None, byte_range=None):
        buf = await get(self, key, prototype, byte_range)
        note("read", f"{self.root}/{key}", len(buf) if buf is not None else 0)
        return buf

    async def counted_partial(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        out = await partial(self, prototype, key_ranges)
        for (key, _), buf in zip(key_ranges, out, strict=True):
            note("read", f"{self.root}/{key}", len(buf) if buf is not None else 0)
        return out

    async def counted_set(self, key, value):
        await put(self, key, value)
        note("written", f"{self.root}/{key}", len(value))

    read, write = local.LocalFileOpener.read, local.LocalFileOpener.write

    def counted_read(self, *args, **kwargs):
        data = read(self, *args, **kwargs)
        note("read", str(self.path), len(data))
        return data

    def counted_write(self, data, *args, **kwargs):
        note("written", str(self.path), len(data))
        return write(self, data, *args, **kwargs)

    zarr.storage.LocalStore.get, zarr.storage.LocalStore.get_partial_values = counted_get, counted_partial
    zarr.storage.LocalStore.set = counted_set
    local.LocalFileOpener.read, local.LocalFileOpener.write = counted_read, counted_write
    zarr.storage.LocalStore._scale_counted = True


def io_totals(io_dir: str) -> dict[str, int]:
    """Sum of every process's counters so far."""
    total: dict[str, int] = {}
    for path in Path(io_dir).glob("*.json"):
        for _ in range(3):
            try:
                counts = json.loads(path.read_text())
                break
            except (ValueError, OSError):
                time.sleep(0.01)
        else:
            continue
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return total


def _proc(pid: int) -> tuple[dict[str, str], float, int, str] | None:
    """(status fields, cpu seconds, wchar, name) of a process, or None if it is gone."""
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return status, (int(stat[11]) + int(stat[12])) / ticks, int(io["wchar"]), name


class TreeSampler(threading.Thread):
    """Samples CPU-seconds, written bytes and resident memory of the driver and every process below it."""

    def __init__(self, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.period, self.root = period, os.getpid()
        self.cpu: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.init_cpu: dict[int, float] = {}
        self.wchar: dict[int, int] = {}
        self.driver_peak = 0.0
        self.actor_peak: dict[str, float] = {}
        self.halt = threading.Event()

    def tree(self) -> list[int]:
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        found, frontier = [self.root], [self.root]
        while frontier:
            parent = frontier.pop()
            children = [p for p, pp in parents.items() if pp == parent]
            found += children
            frontier += children
        return found

    def sample(self) -> None:
        for pid in self.tree():
            info = _proc(pid)
            if info is None:
                continue
            status, cpu, wchar, name = info
            self.cpu[pid], self.wchar[pid] = cpu, wchar
            if name.endswith(".__init__"):  # an actor starting: imports and model load, not per-tile work
                self.init_cpu[pid] = cpu
            if "MapWorker" not in self.names.get(pid, ""):  # an actor keeps its name when it ends
                self.names[pid] = name.removesuffix(".__init__").removesuffix(".submit")
            rss = int(status.get("VmRSS", "0 kB").split()[0]) / 1024
            if pid == self.root:
                self.driver_peak = max(self.driver_peak, rss)
            elif name.startswith("ray::") and "IDLE" not in name:
                self.actor_peak[name] = max(self.actor_peak.get(name, 0.0), rss)

    def run(self) -> None:
        while not self.halt.wait(self.period):
            self.sample()


@dataclass
class Stage:
    """One stage's figures."""

    name: str
    wall: float = 0.0
    cpu: float = 0.0
    read: int = 0
    written: int = 0
    disk_written: int = 0
    requests: int = 0
    input_read: int = 0
    driver_peak: float = 0.0
    actor_peak: dict[str, float] = field(default_factory=dict)
    cpu_by_name: dict[str, float] = field(default_factory=dict)
    work_cpu_by_name: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def actor_cpu(self, part: str) -> float:
        """CPU-seconds of the Ray actors whose name holds ``part`` (e.g. ``ReadStage``), start-up excluded."""
        return sum(c for n, c in self.work_cpu_by_name.items() if part in n)


@contextmanager
def measured(
    name: str, io_dir: str, stages: list[Stage], counts: str | None = None, inputs: tuple[str, ...] = ()
) -> Iterator[Stage]:
    """Measure the block as one stage (appended to ``stages``).

    With ``counts`` (a counting S3 server's file, `s3_server.start_s3`), the server's traffic in the
    stage's time is added; ``inputs``: the key prefixes of the input cubes there.
    """
    t0 = time.time()
    sampler = TreeSampler()
    sampler.sample()
    cpu0, wchar0, io0 = dict(sampler.cpu), dict(sampler.wchar), io_totals(io_dir)
    sampler.driver_peak, sampler.actor_peak = 0.0, {}
    stage = Stage(name)
    sampler.start()
    start = time.perf_counter()
    try:
        yield stage
    finally:
        stage.wall = time.perf_counter() - start
        sampler.halt.set()
        sampler.join()
        sampler.sample()
        time.sleep(0.3)  # the last counters of actors that just finished
        io1 = io_totals(io_dir)
        for pid, c in sampler.cpu.items():
            name = sampler.names[pid]
            stage.cpu_by_name[name] = stage.cpu_by_name.get(name, 0.0) + c - cpu0.get(pid, 0.0)
            work = c - max(cpu0.get(pid, 0.0), sampler.init_cpu.get(pid, 0.0))
            stage.work_cpu_by_name[name] = stage.work_cpu_by_name.get(name, 0.0) + work
        stage.cpu = sum(stage.cpu_by_name.values())
        stage.disk_written = sum(w - wchar0.get(p, 0) for p, w in sampler.wchar.items())
        for key in ("read", "written", "requests", "input_read"):
            setattr(stage, key, io1.get(key, 0) - io0.get(key, 0))
        if counts:
            served = counts_between(counts, t0, time.time())
            stage.read, stage.written, stage.requests = (
                stage.read + served["read"],
                stage.written + served["written"],
                stage.requests + served["requests"],
            )
            stage.input_read += counts_between(counts, t0, time.time(), inputs)["read"]
        stage.driver_peak = stage.driver_peak or sampler.driver_peak  # a map stage's own driver, else this process
        stage.actor_peak = sampler.actor_peak
        stages.append(stage)
        print(f"stage done: {table_row(stage)}", flush=True)


def save_tiny_bundle_in_child(url: str) -> str:
    """Save the tiny ensemble from a child process (torch stays out of this process); returns its URL."""
    code = "import sys; from tests.fixtures.tiny_models import save_tiny_bundle; print(save_tiny_bundle(sys.argv[1]))"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, url], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def drive(cfg: MapConfig, root: str, stage: Stage) -> MapRunResult:
    """Run the map job in a driver process of its own on this Ray cluster; its peak memory is the stage's."""
    import ray

    job, result = os.path.join(root, "driver-job.json"), os.path.join(root, "driver-result.json")
    Path(job).write_text(cfg.model_dump_json())
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    subprocess.run([sys.executable, __file__, "--drive", job, "--result", result], env=env, check=True)
    out = json.loads(Path(result).read_text())
    stage.driver_peak = out.pop("driver_peak_mib")
    return MapRunResult(**out)


def driver_main(job: str, result: str) -> None:
    """The map job's driver process (``--drive``): counts its storage calls, runs the job, saves what it did."""
    import ray
    from ray.data import DataContext

    install_io_counters()
    ray.init(
        address=os.environ["RAY_ADDRESS"],
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": install_io_counters},
    )
    DataContext.get_current().enable_progress_bars = False
    try:
        out = run_map(MapConfig.model_validate_json(Path(job).read_text()))
    finally:
        ray.shutdown()
    Path(result).write_text(json.dumps({**asdict(out), "driver_peak_mib": peak_rss_mib()}))


def generate(root: str, size: int, workers: int) -> tuple[str, str, float]:
    """Write the raster and climate cubes (the region is the whole cube); returns their URLs and the zstd ratio."""
    from tests.fixtures.tiny_models import TINY_VARIABLES

    grid = Grid.from_origin(3035, 4_000_000.0, 3_000_000.0, 30.0, size, size)
    raster, climate = storage.join(root, "raster.zarr"), storage.join(root, "climate.zarr")
    writer = create_raster_cube(raster, grid, BAND_NAMES)
    shard = writer.cube.layout.shard

    def one(tile: tuple[int, int, int, int]) -> None:
        writer.write_tile(tile[0], tile[1], landsat_tile(*tile))

    for _ in run_bounded(one, list(grid.tiles(shard)), workers):
        pass
    writer.finish()
    clim = Grid.from_origin(
        3035, 4_000_000.0 - 8000.0, 3_000_000.0 + 8000.0, 4000.0, size * 30 // 4000 + 4, size * 30 // 4000 + 4
    )
    times = month_starts("2016-07", 24)
    cube = create_climate_cube(climate, clim, TINY_VARIABLES, times)
    rows, cols = np.meshgrid(np.arange(clim.height), np.arange(clim.width), indexing="ij")
    season = np.cos(2 * np.pi * np.arange(len(times)) / 12)[None, :, None, None]
    base = np.array([60.0, 2.0, 12.0])[:, None, None, None] + 0.05 * (rows + cols)[None, None]
    write_climate_block(cube, 0, 0, (base + np.array([20.0, 6.0, 8.0])[:, None, None, None] * season))
    finish_climate_cube(cube)
    ratio = compression_ratio(landsat_raw(0, 0, 512, 512))
    return raster, climate, ratio


def rewrite_shard(raster: str, shard_rc: tuple[int, int]) -> tuple[int, int, int, int]:
    """Rewrite one shard with a new scene (another seed) through the cube writer; returns its pixel window."""
    cube = open_raster_cube(raster, writable=True)
    s = cube.layout.shard
    last = (cube.grid.height - 1) // s, (cube.grid.width - 1) // s
    row0, col0 = min(shard_rc[0], last[0]) * s, min(shard_rc[1], last[1]) * s
    h, w = min(s, cube.grid.height - row0), min(s, cube.grid.width - col0)
    writer = RasterCubeWriter(cube)
    writer.write_tile(row0, col0, landsat_tile(row0, col0, h, w, seed=1 + int(time.time()) % 100_000))  # a new scene
    writer.finish()
    return row0, col0, h, w


def tiles_over(window: tuple[int, int, int, int], stride: int, patch: int, out_h: int, out_w: int) -> list[str]:
    """Names of the tiles whose input windows (halo included) overlap an input pixel window, from geometry alone."""
    r0, c0, h, w = window
    names = []
    for tr in range(-(-out_h // TILE_PX)):
        for tc in range(-(-out_w // TILE_PX)):
            th, tw = min(TILE_PX, out_h - tr * TILE_PX), min(TILE_PX, out_w - tc * TILE_PX)
            y0 = tr * TILE_PX * stride + stride // 2 - patch // 2
            x0 = tc * TILE_PX * stride + stride // 2 - patch // 2
            y1, x1 = y0 + (th - 1) * stride + patch, x0 + (tw - 1) * stride + patch
            if y0 < r0 + h and r0 < y1 and x0 < c0 + w and c0 < x1:
                names.append(f"r{tr:04d}_c{tc:04d}")
    return names


def recomputed_equal_fresh(spec: MapJobSpec, tiles: list[Tile], names: list[str]) -> bool:
    """True if every layer of the named tiles in the map cube equals, bit for bit, the tile computed afresh.

    A full run computes each tile on its own with the same stages (deterministic per tile), so a fresh
    computation of a tile is what a full run writes for it; tiles not recomputed kept inputs and outputs.
    """
    reader, predictor = ReadStage(spec), PredictStage(spec)
    cube = open_map_cube(spec.map_url)
    by_name = {t.name: t for t in tiles}
    for name in names:
        tile = by_name[name]
        out = predictor(reader(tile_row(tile))[0])
        for i, target in enumerate(cube.targets):
            for layer, values in ((target, out["mean"][i]), (f"{target}_std", out["std"][i])):
                stored = cube.read(layer, tile.row0, tile.col0, tile.height, tile.width)
                if stored.tobytes() != values.astype(np.float32).tobytes():
                    return False
        missing = cube.read("input_missing", tile.row0, tile.col0, tile.height, tile.width)
        if missing.tobytes() != out["missing"].tobytes():
            return False
    return True


def folder_bytes(*urls: str) -> int:
    """Bytes stored under folders (local or S3)."""
    return sum(int(loc.fs.du(loc.path)) for loc in map(storage.resolve, urls))


TABLE_HEAD = (
    "| stage | wall s | CPU s | read MB | input read MB | written MB | disk written MB | requests | "
    "driver peak MiB | largest actor peak MiB |\n|---|---|---|---|---|---|---|---|---|---|"
)


def table_row(s: Stage) -> str:
    """One stage as a markdown table row."""
    actor = max(s.actor_peak.items(), key=lambda kv: kv[1], default=("-", 0.0))
    actor_txt = f"{actor[1]:.0f} ({actor[0].removeprefix('ray::')[:40]})" if s.actor_peak else "-"
    return (
        f"| {s.name} | {s.wall:.1f} | {s.cpu:.1f} | {s.read / 1e6:.1f} | {s.input_read / 1e6:.2f} | "
        f"{s.written / 1e6:.1f} | {s.disk_written / 1e6:.1f} | {s.requests} | {s.driver_peak:.0f} | {actor_txt} |"
    )


def recipe_bundle(recipe_path: str, url: str) -> str:
    """A one-fold bundle of a recipe with untrained weights: the production model's patch and FLOPs for a plan."""
    from soilnet.data.bands import CLIMATE_VARIABLES
    from soilnet.data.normalisation import NormStats
    from soilnet.recipes.bundle import BundleMeta, save_bundle
    from soilnet.recipes.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    d = recipe.data
    bands, variables = list(BAND_NAMES[: d.n_bands]), list(CLIMATE_VARIABLES)[: d.n_climate_vars]
    stats = NormStats(
        image_method="minmax", bands=bands, image_center=[0.0] * len(bands), image_scale=[1.0] * len(bands),
        variables=variables, climate_mean=[0.0] * len(variables), climate_std=[1.0] * len(variables),
        target_mean=0.0, target_std=1.0, n_rows=1,
    )  # fmt: skip
    meta = BundleMeta(
        targets=["soc_g_kg"], units=["g/kg"], bands=bands, climate_variables=variables, patch_px=d.patch_px,
        months=d.n_months,
    )  # fmt: skip
    return save_bundle(url, recipe, [recipe.build_model()], stats, meta)


def projection_table(rates: MeasuredRates, root: str, recipe: str) -> None:
    """Wall hours and cost for Europe and the contiguous US at 240 m and 30 m on 1, 8 and 64 GPUs.

    Plans are made over metadata-only continents with an untrained bundle of ``recipe``, so tiles, halo
    and counted FLOPs are the production model's.
    """
    from soilnet.mapping.projection import project
    from soilnet.recipes.recipe import load_recipe

    months = load_recipe(recipe).data.n_months
    model = recipe_bundle(recipe, os.path.join(root, "recipe-bundle"))
    print("| region | resolution | GPUs | read h | predict h (GPU ASSUMED) | write h | wall h | bound | cost USD |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ring, epsg in (("Europe", EUROPE, 3035), ("CONUS", CONUS, 5070)):
        continent = empty_continent(root, name.lower(), ring, epsg, months=months)
        for resolution, tile_px in ((240.0, 256), (30.0, 2048)):
            cfg = MapConfig(
                raster=continent.raster,
                climate=continent.climate,
                region=continent.region,
                out=os.path.join(root, f"{name}-map"),
                model=ModelSourceConfig(bundle=model),
                climate_end="latest",
                resolution_m=resolution,
                tile_px=tile_px,
            )
            plan = prepare_map(cfg, create=False).plan
            for gpus in (1, 8, 64):
                p = project(plan, rates, gpus, cfg.cpus_per_gpu, cfg.gpu_peak_tflops, cfg.gpu_peak_fraction,
                            cfg.gpu_hour_usd)  # fmt: skip
                print(
                    f"| {name} | {resolution:g} m | {gpus} | {p.read_h:.2f} | {p.predict_h:.3f} | {p.write_h:.2f} | "
                    f"{p.wall_h:.2f} | {p.bound} | {p.cost_usd:,.0f} |"
                )
    print(
        f"(rates: {rates.source}; reader cores per GPU {cfg.cpus_per_gpu}; GPU: counted FLOPs of {recipe} "
        f"({plan.flops_per_pixel / 1e9:.2f} GFLOP per output px at {resolution:g} m, {cfg.mode} mode) at "
        f"{cfg.gpu_peak_fraction:.0%} of "
        f"{cfg.gpu_peak_tflops:g} TFLOP/s; ${cfg.gpu_hour_usd:g} per GPU node-hour)"
    )


def selection_seconds(cfg: MapConfig) -> float:
    """Seconds the driver spends selecting every tile from metadata (digests, markers, hashes), start-up excluded.

    With nothing changed this is the whole per-tile cost of a nightly run; opening the cubes and reading
    the model card once per run is not per tile.
    """
    from soilnet.mapping.changes import tile_rows
    from soilnet.mapping.job import _selector  # the driver's own tile selection, timed alone

    prepared = prepare_map(cfg, create=False)
    start = time.perf_counter()
    selector = _selector(prepared)
    for row in range(tile_rows(prepared.spec.selection)):
        for _ in selector.changes(row):
            pass
    return time.perf_counter() - start


def patient_ray_start(seconds: float = 600.0) -> None:
    """Let a raylet take minutes, not Ray's fixed 30 s, to register with the GCS (a crowded machine misses it)."""
    import ray._private.services as services

    get_node = services.get_node

    def waiting(*args, **kwargs):
        deadline = time.monotonic() + seconds
        while True:
            try:
                return get_node(*args, **kwargs)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    services.get_node = waiting


def rehearse(
    root: str, size: int, workers: int, mode: str, reuse: bool = False, counts: str | None = None, predictors: int = 1
) -> Outcome:
    """Run every stage, print the per-stage table and return the headline figures.

    With ``counts`` (`s3_server.start_s3`), cubes and map go to `S3_ROOT`; the model stays under ``root``.
    """
    import ray
    from ray.data import DataContext

    io_dir = os.path.join(root, "io")
    os.makedirs(io_dir, exist_ok=True)
    data = S3_ROOT if counts else root
    raster_url, climate_url = storage.join(data, "raster.zarr"), storage.join(data, "climate.zarr")
    prefixes = tuple(storage.resolve(u).path for u in (raster_url, climate_url)) if counts else ()
    os.environ[IO_DIR_ENV], os.environ[INPUTS_ENV] = io_dir, os.pathsep.join([raster_url, climate_url])
    install_io_counters()
    stages: list[Stage] = []
    measure = functools.partial(measured, io_dir=io_dir, stages=stages, counts=counts, inputs=prefixes)
    if reuse and os.path.exists(os.path.join(root, "bundle")):  # a --keep folder whose generation finished
        raster, climate, model = raster_url, climate_url, os.path.join(root, "bundle")
        ratio = compression_ratio(landsat_raw(0, 0, 512, 512))
        shutil.rmtree(os.path.join(root, "map"), ignore_errors=True)  # the map stage starts from nothing again
        print(f"reusing the cubes generated in {root}")
    else:
        with measure("generate") as stage:
            raster, climate, ratio = generate(data, size, workers)
            model = save_tiny_bundle_in_child(os.path.join(root, "bundle"))
            stage.note = f"zstd ratio {ratio:.2f}"
    print(f"generated {size} x {size} px = {size * size:.3g} px; pixels compress {ratio:.2f}x (blosc-zstd 3, shuffle)")
    input_bytes = folder_bytes(raster, climate)

    def config(out: str) -> MapConfig:
        return MapConfig(
            raster=raster, climate=climate, out=storage.join(data, out), model=ModelSourceConfig(bundle=model),
            climate_end="2018-06", resolution_m=RESOLUTION_M, tile_px=TILE_PX, chunk_px=TILE_PX, batch_size=512,
            executor="ray", readers=1, predictors=predictors, cpus_per_actor=1 / (2 + predictors), mode=mode,
        )  # fmt: skip

    patient_ray_start()
    for attempt in range(START_ATTEMPTS):  # on a crowded machine the raylet may miss Ray's 30 s start-up window
        try:
            ray.init(
                address="local",
                num_cpus=2,
                object_store_memory=512 * MIB,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"worker_process_setup_hook": install_io_counters},
            )
            break
        except Exception as exc:
            ray.shutdown()
            if attempt == START_ATTEMPTS - 1:
                raise
            print(f"Ray did not start ({exc}); retrying")
    DataContext.get_current().enable_progress_bars = False
    try:
        cfg = config("map")
        with measure("map") as stage:
            first = drive(cfg, root, stage)
        with measure("publish"):
            export_outputs(cfg)
        with measure("nightly-same") as stage:
            same = drive(cfg, root, stage)
            stage.note = f"{len(same.computed)} tiles computed"
        window = rewrite_shard(raster, CHANGED_SHARD)
        with measure("nightly-changed") as stage:
            changed = drive(cfg, root, stage)
            stage.note = f"{len(changed.computed)} tiles computed"
    finally:
        ray.shutdown()
    prepared = prepare_map(cfg, create=False)
    grid = prepared.spec.grid
    expected = tiles_over(window, grid.stride, grid.patch, grid.output.height, grid.output.width)
    with measure("fresh-tiles"):
        identical = recomputed_equal_fresh(prepared.spec, prepared.plan.tiles, changed.computed)
    exact = changed.computed == sorted(expected) and identical
    print(TABLE_HEAD)
    print("\n".join(table_row(s) for s in stages))
    for s in stages:
        if s.note:
            print(f"  {s.name}: {s.note}")
    by = {s.name: s for s in stages}
    fraction = by["nightly-same"].input_read / input_bytes
    print(
        f"tiles {first.tiles}; changed shard {CHANGED_SHARD} -> recomputed {changed.computed} "
        f"(expected {sorted(expected)}); incremental map == full map: {exact}"
    )
    print(f"input on storage {input_bytes / 1e6:.1f} MB; nightly run with nothing changed read "
          f"{by['nightly-same'].input_read} B of it ({fraction:.2e})")  # fmt: skip
    m = by["map"]
    plan = prepared.plan
    work = m.work_cpu_by_name
    cpu_txt = [f"{n.removeprefix('ray::')[:40]} {c:.1f} ({work[n]:.1f})" for n, c in m.cpu_by_name.items()]
    print("map stage CPU-s by process (without start-up): " + ", ".join(cpu_txt))
    from soilnet.mapping.projection import MeasuredRates

    rates = MeasuredRates(
        source=f"benchmarks/scale.py {time.strftime('%Y-%m-%d')}: {size} x {size} px at 30 m, "
        f"{os.cpu_count()} shared cores",
        read_decode_bytes_per_core_s=plan.input_bytes / max(m.actor_cpu("ReadStage"), 1e-3),
        write_px_per_s=plan.output_px / max(m.actor_cpu("WriteStage"), 1e-3),
        tile_overhead_s=selection_seconds(cfg) / first.tiles,
        cpu_predict_px_per_core_s=plan.output_px / max(m.actor_cpu("PredictStage"), 1e-3),
    )
    print(f"measured rates: {rates.model_dump_json()}")
    driver_peak = max(by[n].driver_peak for n in ("map", "nightly-same", "nightly-changed"))
    return Outcome(size * size, size * size / m.cpu, fraction, exact, driver_peak, rates)


@dataclass(frozen=True)
class Outcome:
    """The headline figures of a rehearsal."""

    pixels: int
    px_per_core_s: float
    read_fraction: float
    exact: bool
    driver_peak_mib: float
    rates: MeasuredRates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="About 1e7 px (3,200 x 3,200).")
    parser.add_argument("--size", type=int, help="Region side in 30 m pixels (default 10,240: 1.05e8 px).")
    parser.add_argument("--workers", type=int, default=2, help="Threads generating shards.")
    parser.add_argument("--predictors", type=int, default=1, help="Predictor actors of the map stages.")
    parser.add_argument("--mode", choices=["windows", "dense"], default="dense", help="Map mode (map.mode).")
    parser.add_argument("--keep", help="Folder to work in and keep (default: a temporary one).")
    parser.add_argument("--s3", action="store_true", help="Cubes and map on a loopback moto S3 server (counted).")
    parser.add_argument("--recipe", default=str(RECIPE), help="Recipe whose counted FLOPs the projection uses.")
    parser.add_argument("--projection", metavar="RATES", help="Only print the projection from saved rates (JSON).")
    parser.add_argument("--drive", help=argparse.SUPPRESS)  # a map stage's driver process: its job (MapConfig JSON)
    parser.add_argument("--result", help=argparse.SUPPRESS)  # ... and where it saves what it did
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("SOILNET_PROGRESS", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    if args.drive:
        driver_main(args.drive, args.result)
        return
    if args.projection:
        from soilnet.mapping.projection import load_rates

        with tempfile.TemporaryDirectory(prefix="scale-projection-") as folder:
            projection_table(load_rates(args.projection), folder, args.recipe)
        return
    size = args.size or (3200 if args.quick else 10240)
    root = args.keep or tempfile.mkdtemp(prefix="scale-")
    server = start_s3(counts=os.path.join(root, "s3-counts.jsonl")) if args.s3 else None
    try:
        counts = os.path.join(root, "s3-counts.jsonl") if server else None
        reuse = bool(args.keep) and not server
        outcome = rehearse(root, size, args.workers, args.mode, reuse, counts, args.predictors)
        if args.size is None and not server:  # a standard run's rates (its source names the size) are what plans read
            from soilnet.mapping.projection import save_rates

            RATES.parent.mkdir(exist_ok=True)
            save_rates(outcome.rates, RATES)
            print(f"rates saved to {RATES}")
        projection_table(outcome.rates, os.path.join(root, "continents"), args.recipe)
    finally:
        if server:
            server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"SCALE: pixels={outcome.pixels} map_px_per_core_s={outcome.px_per_core_s:.0f} "
        f"nightly_read_fraction={outcome.read_fraction:.2e} changed_tiles_exact={'yes' if outcome.exact else 'no'} "
        f"driver_peak_mib={outcome.driver_peak_mib:.0f} "
        "(target: nightly_read_fraction<=0.01 changed_tiles_exact=yes driver_peak_mib<=1024)"
    )


if __name__ == "__main__":
    main()
