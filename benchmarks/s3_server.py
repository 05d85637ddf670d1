"""A moto S3 server on loopback, in a process of its own, for the benchmarks that read from object storage.

In its own process, the server's request handling is not charged to the benchmark's process CPU
time (train_end_to_end.py measures the readers' CPU seconds).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time


class S3Server:
    """A running moto server; `stop` ends it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def stop(self) -> None:
        """End the server process."""
        self.process.terminate()
        self.process.wait(timeout=30)


def start_s3() -> S3Server:
    """A moto S3 server on a free loopback port, with a bucket; endpoint in the environment."""
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
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
