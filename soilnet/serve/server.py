"""Runs the viewer: binds the socket (so port 0 works and the real address is known), then uvicorn."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import uvicorn

from soilnet.serve.app import Viewer, create_app
from soilnet.serve.config import ServeConfig

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (an error names the address when it is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    return sock


def run_server(cfg: ServeConfig, announce: Callable[[str], None]) -> None:
    """Load the layers and points, then serve until interrupted; ``announce`` gets the page URL."""
    app = create_app(Viewer.load(cfg))
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    announce(f"http://{host}:{port}/")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
