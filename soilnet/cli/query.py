"""``soilnet query --points FILE``: every target of a model at arbitrary lon/lat, each window read once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soilnet.cli.common import ConfigOpt, SetOpt, configure, facts_table, results, run_guarded

PointsOpt = Annotated[str, typer.Option("--points", "-p", help="CSV or Parquet with lon, lat columns (WGS84).")]
ModelOpt = Annotated[
    str,
    typer.Option("--model", "-m", help="Model bundle folder URL, or a registered model models:/<name>@<alias>."),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write the predictions here (.csv or .parquet); else print them.")
]
ClimateEndOpt = Annotated[
    str, typer.Option("--climate-end", help="Last month of the climate series (YYYY-MM), or 'latest' in the cube.")
]


def query(
    points: PointsOpt,
    model: ModelOpt,
    out: OutOpt = None,
    climate_end: ClimateEndOpt = "latest",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Predict every target of a model at the points of a table (raster and climate cubes of the config's data).

    Points are grouped by window, so each window is read once; an INR model (recipe miso) predicts each
    point at its exact position, other models from the window centred on it.
    """

    def body() -> None:
        from soilnet.data.climate_cube import open_climate_cube
        from soilnet.data.raster_cube import open_raster_cube
        from soilnet.mapping.query import open_bundle, predict_points, prediction_table, read_query_points
        from soilnet.tracking.runs import tracking_uri

        cfg = configure(config, set_)
        table = read_query_points(points)
        raster, climate = open_raster_cube(cfg.data.url("raster")), open_climate_cube(cfg.data.url("climate"))
        registry = tracking_uri(cfg.tracking, cfg.data.root) if model.startswith("models:/") else None
        bundle = open_bundle(model, registry)
        end = str(climate.times[-1].astype("datetime64[M]")) if climate_end == "latest" else climate_end
        mean, std, windows = predict_points(
            bundle, raster, climate, table["lon"].to_numpy(), table["lat"].to_numpy(), end
        )
        predictions = prediction_table(table, bundle, mean, std)
        facts = {"points": len(table), "windows read": len(windows.origins), "targets": ", ".join(bundle.meta.targets)}
        if out is None:
            results.print(predictions.to_string(index=False))
        else:
            if out.suffix == ".parquet":
                predictions.to_parquet(out, index=False)
            else:
                predictions.to_csv(out, index=False)
            facts["written"] = str(out)
        results.print(facts_table("soilnet query", facts))

    run_guarded(body)
