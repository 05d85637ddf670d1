"""Preflight check of a job's environment, run where the job would run.

``python -m soilnet.submission.selfcheck --config FILE`` validates the config, checks that the
storage it names is reachable (the workspace's bucket or parent folder, every input given
explicitly) and that the MLflow tracking server answers, then exits 0, or 1 naming each failure.
Submit it before a long job: ``soilnet submit soilnet.submission.selfcheck --config FILE``.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from soilnet import storage
from soilnet.config import ConfigError, SoilnetConfig, load_config

log = logging.getLogger(__name__)

Check = tuple[str, Callable[[], None]]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise RuntimeError(message)


def storage_root_reachable(url: str) -> None:
    """The workspace can be created: its bucket exists, or its nearest local parent is writable."""
    loc = storage.resolve(url)
    if loc.is_s3:
        bucket = loc.path.split("/", 1)[0]
        _require(loc.fs.exists(bucket), f"bucket {bucket!r} of {url} does not exist or is not reachable")
        return
    parent = Path(loc.path).absolute()
    while not parent.exists():
        parent = parent.parent
    _require(os.access(parent, os.W_OK), f"{parent} (for {url}) is not writable")


def input_exists(field: str, url: str) -> None:
    """An input URL given in the config exists."""
    _require(storage.exists(url), f"data.{field} = {url} does not exist")


def tracking_server_answers(uri: str) -> None:
    """An HTTP MLflow tracking server answers its health check."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as response:
            _require(response.status == 200, f"MLflow at {uri} answered {response.status}")
    except urllib.error.URLError as exc:
        raise RuntimeError(f"MLflow at {uri} is not reachable: {exc.reason}") from exc


def checks(cfg: SoilnetConfig, environ: dict[str, str] | os._Environ[str]) -> list[Check]:
    """The checks that apply to this config and environment."""
    found: list[Check] = [(f"storage {cfg.data.root}", lambda: storage_root_reachable(cfg.data.root))]
    for field in ("raster", "climate", "points", "region"):
        url = getattr(cfg.data, field)
        if url:
            found.append((f"data.{field}", lambda f=field, u=url: input_exists(f, u)))
    uri = environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        found.append((f"MLflow {uri}", lambda: tracking_server_answers(uri)))
    return found


def run_checks(cfg: SoilnetConfig, environ: dict[str, str] | os._Environ[str] | None = None) -> list[str]:
    """Run every check; returns the failure messages (empty when all pass)."""
    failures = []
    for name, check in checks(cfg, os.environ if environ is None else environ):
        try:
            check()
            log.info("ok   %s", name)
        except (RuntimeError, OSError, storage.StorageError) as exc:
            log.error("FAIL %s: %s", name, exc)
            failures.append(f"{name}: {exc}")
    return failures


def main(
    config: Annotated[Path, typer.Option("--config", "-c", help="Job YAML config to check.")],
) -> None:
    """Check a job config and the storage and MLflow server it needs; exit 1 on any failure."""
    from soilnet.logs import setup_logging

    setup_logging("INFO")
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        log.error("FAIL config: %s", exc)
        raise typer.Exit(1) from exc
    failures = run_checks(cfg)
    if failures:
        raise typer.Exit(1)
    log.info("all checks passed for %s", config)


if __name__ == "__main__":
    typer.run(main)
