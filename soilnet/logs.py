"""Logging set-up for the CLI and job entry points (the library itself only logs)."""

from __future__ import annotations

import logging
import os

from rich.logging import RichHandler


def setup_logging(level: str = "INFO") -> None:
    """Send soilnet's log records to stderr through rich, at ``level``."""
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=False, show_path=False, markup=False)],
        force=True,
    )
    for noisy in ("botocore", "s3fs", "aiobotocore", "urllib3", "matplotlib", "numcodecs", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def quiet_ray_data() -> None:
    """Turn Ray Data's own progress reporting off, and its INFO lines: off a terminal it logs a block of lines
    every few seconds for every dataset it runs, while soilnet shows one bar per stage. ``SOILNET_RAY_DATA_PROGRESS=1``
    keeps Ray Data's reporting. Call in the driver, after ``ray.init``."""
    if os.environ.get("SOILNET_RAY_DATA_PROGRESS") == "1":
        return
    from ray.data import DataContext
    from ray.util.debug import log_once

    DataContext.get_current().enable_progress_bars = False
    log_once("ray_data_progress_manager_disabled")  # Ray Data would warn once that its bars are off: on purpose
    logging.getLogger("ray.data").setLevel(logging.WARNING)
