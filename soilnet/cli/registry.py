"""Adds each area's sub-application to the root ``soilnet`` command."""

from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    """Register every area's commands on the root app (imported lazily: heavy dependencies)."""
    from soilnet.cli.acquire import app as acquire_app

    app.add_typer(acquire_app, name="acquire", help="Export Landsat, TerraClimate and WorldCover from Earth Engine.")
