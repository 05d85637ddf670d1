"""Adds each area's sub-application to the root ``soilnet`` command."""

from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    """Register every area's commands on the root app."""
