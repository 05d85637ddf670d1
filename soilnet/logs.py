"""Logging set-up for the CLI and job entry points (the library itself only logs)."""

from __future__ import annotations

import logging

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
