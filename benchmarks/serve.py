"""Map viewer tile latency: `soilnet serve`'s tile endpoint over HTTP, from a local map and from S3 on loopback.

Publishes a map of one target (a smooth SOC field, its std and the missing-input mask) with the real
`export_outputs` (tile COGs, VRT mosaic, overview COG, STAC) to a local folder and to a moto S3 server
on 127.0.0.1 in a process of its own (`s3_server.py`), starts the viewer's app (uvicorn, the same app
`soilnet serve` runs) on a loopback port for each, then requests random Web Mercator tiles of the SOC
layer one after another: zoom levels from the layer's overview zoom to one past its native zoom, tiles drawn
uniformly among those that touch the map.
Latency is the wall time of one HTTP request (PNG received), after one warm-up request per server.

    python benchmarks/serve.py [--quick]

The last line holds the key figure (local p95).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import morecantile
import numpy as np
import uvicorn

from soilnet.serve.app import Viewer, create_app
from soilnet.serve.config import ServeConfig
from soilnet.serve.server import bind

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared fixtures
from s3_server import start_s3

from tests.fixtures.map_outputs import write_map_outputs

TARGET_P95_MS = 150.0
LAYER = "soc_g_kg"


def start_viewer(cfg: ServeConfig) -> tuple[str, uvicorn.Server]:
    """The viewer's app on a free loopback port, in a thread; returns its URL and server."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(Viewer.load(cfg)), log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def random_tiles(url: str, n: int, seed: int) -> list[morecantile.Tile]:
    """``n`` tiles of the SOC layer, zoom uniform over [minzoom, maxzoom + 1], tile uniform within a zoom."""
    with urllib.request.urlopen(f"{url}/api/layers") as reply:
        layer = next(x for x in json.load(reply)["layers"] if x["name"] == LAYER)
    tms = morecantile.tms.get("WebMercatorQuad")
    by_zoom = {z: list(tms.tiles(*layer["bounds"], zooms=[z])) for z in range(layer["minzoom"], layer["maxzoom"] + 2)}
    rng = np.random.default_rng(seed)
    zooms = rng.choice(sorted(by_zoom), size=n)
    return [by_zoom[z][rng.integers(len(by_zoom[z]))] for z in zooms]


def fetch(url: str, tile: morecantile.Tile) -> bytes:
    """One tile request; the body (a PNG, or empty for a tile that misses the data)."""
    with urllib.request.urlopen(f"{url}/tiles/{LAYER}/{tile.z}/{tile.x}/{tile.y}.png") as reply:
        return reply.read()


def time_tiles(url: str, tiles: list[morecantile.Tile]) -> tuple[list[float], int, float]:
    """Milliseconds per tile request, how many returned a PNG, and this process's CPU milliseconds per tile
    (server and client, both in this process; moto runs in its own), after one uncounted warm-up request."""
    fetch(url, tiles[0])
    times, pngs = [], 0
    cpu = time.process_time()
    for tile in tiles:
        start = time.perf_counter()
        body = fetch(url, tile)
        times.append((time.perf_counter() - start) * 1000)
        pngs += body[:4] == b"\x89PNG"
    return times, pngs, (time.process_time() - cpu) * 1000 / len(tiles)


def summary(name: str, times: list[float], pngs: int, cpu_ms: float) -> float:
    """Print median and p95 latency and CPU per tile; returns p95."""
    p95 = float(np.percentile(times, 95))
    median = statistics.median(times)
    print(
        f"{name}: {len(times)} tiles ({pngs} PNGs), median {median:.1f} ms, p95 {p95:.1f} ms, cpu {cpu_ms:.1f} ms/tile"
    )
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1024 x 1024 px map, 200 tiles each (about 2 minutes).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    side, n = (1024, 200) if args.quick else (6144, 1000)
    moto = start_s3()  # in its own process: its request handling is not charged to the viewer
    bucket = "s3://bench"
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as root:
        start = time.perf_counter()
        local = str(Path(root) / "map")
        write_map_outputs(local, side, side, chunk_px=512, blocksize=256)
        print(f"map of {side} x {side} px at 240 m published locally in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        remote = f"{bucket}/maps/serve"
        write_map_outputs(remote, side, side, chunk_px=512, blocksize=256)
        print(f"the same map published to S3 (moto on loopback) in {time.perf_counter() - start:.0f} s")
        p95 = {}
        for name, where in (("local", local), ("s3", remote)):
            url, server = start_viewer(ServeConfig(map=where))
            tiles = random_tiles(url, n, seed=0)
            p95[name] = summary(name, *time_tiles(url, tiles))
            server.should_exit = True
    moto.stop()
    print(f"S3 (moto on loopback): p95_ms={p95['s3']:.1f}")
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"SERVE: p95_ms={p95['local']:.1f} (target: <= {TARGET_P95_MS:.0f} ms local)")


if __name__ == "__main__":
    main()
