"""``soilnet serve``: the map viewer in a browser, from a map's published COGs (local or S3).

Imports FastAPI, rio-tiler and uvicorn inside the command, so ``soilnet --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soilnet.cli.common import SetOpt, console, results, run_guarded
from soilnet.logs import setup_logging


def serve(
    map_url: Annotated[
        str | None, typer.Option("--map", "-m", help="A map job's output folder (stac/, cog/); local or s3://.")
    ] = None,
    stac: Annotated[
        str | None, typer.Option("--stac", help="A STAC item, a folder of items, or a catalog; local or s3://.")
    ] = None,
    points: Annotated[str | None, typer.Option("--points", "-p", help="Points table (Parquet) to draw.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port (default 8080; 0: any free port).")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1; 0.0.0.0 in a container).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML with a `serve` section (or a file of only it).")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Serve a map's layers (every COG its STAC names), values at a click and sample points to a web page.

    S3 endpoints and credentials come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
    """
    given = {"map": map_url, "stac": stac, "points": points, "port": port, "host": host}

    def body() -> None:
        from soilnet.serve.config import load_serve_config
        from soilnet.serve.server import run_server

        setup_logging("INFO")
        cfg = load_serve_config(config, set_ or [], given)
        run_server(cfg, announce=lambda url: results.print(f"soilnet viewer on [bold]{url}[/] (Ctrl-C stops it)"))

    run_guarded(body)
    console.print("viewer stopped")
