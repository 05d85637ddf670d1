"""A moto S3 server on loopback, in a process of its own, for the benchmarks that read from object storage.

In its own process, the server's request handling is not charged to the benchmark's process CPU
time (train_end_to_end.py measures the readers' CPU seconds).

``start_s3(counts=PATH)`` puts a counter in front of moto: requests, bytes sent in response to GETs
(``read``) and bytes received with PUTs and POSTs (``written``), whoever made them (driver, Ray
actors, GDAL), in all and per key prefix (bucket and the first two folders, e.g. ``bench/scale/raster.zarr``),
appended to PATH as JSON lines ``{"t": unix time, "totals": {prefix: [requests, read, written]}}``
(running totals) every 0.2 s while they change; `counts_between` reads the traffic of a time window
(to 0.2 s).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class S3Server:
    """A running moto server; `stop` ends it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def stop(self) -> None:
        """End the server process."""
        self.process.terminate()
        self.process.wait(timeout=30)


def start_s3(counts: str | None = None) -> S3Server:
    """A moto S3 server on a free loopback port, with a bucket; endpoint in the environment.

    With ``counts``, the server counts its traffic into that file (see the module's docstring).
    """
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    if counts:
        Path(counts).parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--port", str(port), "--counts", counts]
    server = S3Server(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
    )
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for _ in range(600):  # up to a minute for the server to listen
        try:
            client.create_bucket(Bucket="bench")
            break
        except Exception:  # not listening yet
            time.sleep(0.1)
    else:
        server.stop()
        raise RuntimeError(f"moto S3 server did not start on port {port}")
    # s3fs sessions still open at interpreter exit are reported by asyncio after the figure line
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return server


class CountedApp:
    """A WSGI application in front of another, counting requests and body bytes; `flush` saves the totals."""

    def __init__(self, app: Any, path: str) -> None:
        self.app, self.path = app, path
        self.totals: dict[str, list[int]] = {}
        self.lock, self.saved = threading.Lock(), ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        received = int(environ.get("CONTENT_LENGTH") or 0) if method in ("PUT", "POST") else 0
        sent = 0
        for chunk in self.app(environ, start_response):
            sent += len(chunk) if method == "GET" else 0
            yield chunk
        prefix = "/".join(environ.get("PATH_INFO", "").strip("/").split("/")[:3])
        with self.lock:
            totals = self.totals.setdefault(prefix, [0, 0, 0])
            totals[0] += 1
            totals[1] += sent
            totals[2] += received

    def flush(self) -> None:
        """Append the totals to the counts file if they changed."""
        with self.lock:
            totals = json.dumps(self.totals)
        if totals != self.saved:
            with open(self.path, "a") as f:
                f.write(f'{{"t": {time.time()}, "totals": {totals}}}\n')
            self.saved = totals


def counts_between(path: str, start: float, end: float, prefixes: Iterable[str] = ("",)) -> dict[str, int]:
    """Requests and bytes the counting server handled between two unix times under any of ``prefixes``."""

    def at(t: float, rows: list[dict[str, Any]]) -> dict[str, list[int]]:
        last: dict[str, list[int]] = {}
        for row in rows:
            if row["t"] > t:
                break
            last = row["totals"]
        return last

    rows = [json.loads(line) for line in Path(path).read_text().splitlines()] if Path(path).exists() else []
    a, b = at(start, rows), at(end, rows)
    out = {"requests": 0, "read": 0, "written": 0}
    for key, totals in b.items():
        if key.startswith(tuple(prefixes)):
            before = a.get(key, [0, 0, 0])
            for i, name in enumerate(out):
                out[name] += totals[i] - before[i]
    return out


def serve_counted(port: int, counts: str) -> None:
    """moto's server application on loopback behind `CountedApp` (flushed every 0.2 s)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    app = CountedApp(DomainDispatcherApplication(create_backend_app), counts)

    def flusher() -> None:
        while True:
            time.sleep(0.2)
            app.flush()

    threading.Thread(target=flusher, daemon=True).start()
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="moto S3 on loopback, counting its traffic")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--counts", required=True, help="JSON-lines file of running totals")
    args = parser.parse_args()
    serve_counted(args.port, args.counts)
