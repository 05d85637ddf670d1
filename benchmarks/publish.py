"""Publishing a continental map layer with bounded memory: peak resident memory and temporary disk.

Writes a map cube of one target (mean, std, input_missing) on a square grid at 240 m, tile by tile
(a smooth SOC field with 1 g/kg noise, so COG compression works on realistic values), then publishes
it with the real `export_outputs` (per-tile COGs, VRT mosaics, overview COGs, STAC items, preview)
in a child process. The child's peak resident memory is its ``ru_maxrss`` (read by the parent once
it exits); its temporary disk is the largest size of its own TMPDIR / CPL_TMPDIR, sampled five
times a second. Output pixels are those of the grid (each of the three layers has that many).

    python benchmarks/publish.py [--quick]

The last line holds the key figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from soilnet.data.grid import Grid
from soilnet.data.zarr_group import mark_complete
from soilnet.mapping.config import MapConfig, ModelSourceConfig
from soilnet.mapping.map_cube import create_map_cube, map_cube_url

MIB = 2**20
TARGET_PEAK_MIB = 2048


def folder_bytes(path: Path) -> int:
    """Bytes of the files below ``path`` (files vanishing while walked are skipped)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def write_cube(out: str, side: int, tile_px: int, chunk_px: int) -> Grid:
    """A complete map cube of ``side`` x ``side`` px, written one tile at a time."""
    grid = Grid.from_origin(3035, 2_600_000.0, 5_400_000.0, 240.0, side, side)
    cube = create_map_cube(map_cube_url(out), grid, ["soc_g_kg"], chunk_px, {"tile_px": tile_px})
    rng = np.random.default_rng(0)
    for row0, col0, height, width in grid.tiles(tile_px):
        rows, cols = np.mgrid[row0 : row0 + height, col0 : col0 + width].astype(np.float32)
        field = 20.0 + 12.0 * np.sin(cols / 97.0) * np.cos(rows / 131.0) + 6.0 * np.sin((rows + cols) / 23.0)
        mean = field + rng.normal(0.0, 1.0, field.shape).astype(np.float32)
        std = 2.0 + 0.1 * np.abs(field - 20.0)
        missing = (rng.random(field.shape) < 0.01).astype(np.uint8)
        cube.write_tile(row0, col0, mean[None], std[None], missing)
    mark_complete(cube.group)
    return grid


def publish(out: str, dest: str) -> None:
    """Child process: publish the cube under ``out`` to ``dest`` and print the outputs as JSON."""
    from soilnet.mapping.outputs import export_outputs

    cfg = MapConfig(
        raster="unused://raster",
        climate="unused://climate",
        out=out,
        model=ModelSourceConfig(bundle="models:/soilnet-soc_g_kg@champion"),
        climate_end="2024-06",
        resolution_m=240,
        cog_blocksize=512,
    )
    outputs = export_outputs(cfg, dest)
    print(json.dumps({"layers": len(outputs.cogs), "tiles": sum(len(c.tiles) for c in outputs.cogs)}))


def measure(out: str, dest: str, tmp: Path) -> tuple[float, int, dict[str, int], float]:
    """Run the publishing child; (peak RSS MiB, peak temp bytes, its report, seconds)."""
    env = {**os.environ, "TMPDIR": str(tmp), "CPL_TMPDIR": str(tmp), "SOILNET_PROGRESS": "0"}
    peak_tmp = 0
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "--publish", out, dest], env=env, stdout=subprocess.PIPE, text=True
    )
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tmp
        while not done.is_set():
            peak_tmp = max(peak_tmp, folder_bytes(tmp))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = child.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"publishing failed (exit {child.returncode})")
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return peak_rss, peak_tmp, json.loads(stdout.strip().splitlines()[-1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4096 x 4096 px (under 2 minutes on 2 cores).")
    parser.add_argument("--publish", nargs=2, metavar=("CUBE_FOLDER", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.publish:
        publish(*args.publish)
        return
    side, tile_px = (4096, 1024) if args.quick else (32768, 4096)
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as root:
        start = time.perf_counter()
        grid = write_cube(str(Path(root) / "map"), side, tile_px, 512)
        print(f"map cube {side} x {side} px written in {time.perf_counter() - start:.0f} s")
        tmp = Path(root) / "tmp"
        tmp.mkdir()
        dest = Path(root) / "release"
        peak_mib, peak_tmp, report, seconds = measure(str(Path(root) / "map"), str(dest), tmp)
        published = folder_bytes(dest)
    px = grid.width * grid.height
    print(
        f"published {report['layers']} layers as {report['tiles']} tile COGs ({published / 2**30:.2f} GiB) "
        f"in {seconds:.0f} s: {3 * px / seconds / 1e6:.1f} Mpx/s over the three layers"
    )
    print(
        f"PUBLISH: px={px} peak_mib={peak_mib:.0f} tmp_gib={peak_tmp / 2**30:.3f} (target: peak_mib<={TARGET_PEAK_MIB})"
    )


if __name__ == "__main__":
    main()
