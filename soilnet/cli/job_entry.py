"""Runs one CLI command as a job entry point (``python -m jobs.<name> --config FILE``)."""

from __future__ import annotations

from collections.abc import Callable

import typer


def run_job(command: Callable[..., object]) -> None:
    """Expose a single typer command (same options as the CLI) as a process entry point."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    app()
