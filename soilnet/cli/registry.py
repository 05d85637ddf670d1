"""Adds each area's sub-application to the root ``soilnet`` command."""

from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    """Register every area's commands on the root app (imported lazily: heavy dependencies)."""
    from soilnet.cli.acquire import app as acquire_app
    from soilnet.cli.ingest import app as ingest_app
    from soilnet.cli.map import app as map_app
    from soilnet.cli.models import app as models_app
    from soilnet.cli.submit import app as submit_app
    from soilnet.cli.tracking import app as tracking_app
    from soilnet.cli.train import app as train_app

    app.add_typer(acquire_app, name="acquire", help="Export Landsat, TerraClimate and WorldCover from Earth Engine.")
    app.add_typer(ingest_app, name="ingest", help="Ingest GeoTIFF / NetCDF / CSV files into cubes and tables.")
    app.add_typer(map_app, name="map", help="Plan and run continental maps; publish COG, STAC and previews.")
    app.add_typer(models_app, name="models", help="Inspect model recipes.")
    app.add_typer(submit_app)
    app.add_typer(tracking_app, name="tracking", help="Deliver MLflow tracking calls spooled during an outage.")
    app.add_typer(train_app)
