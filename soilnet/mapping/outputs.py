"""A map's published outputs: tiled COGs per layer, STAC items, PNG preview, logged to MLflow.

Layout under the job's ``out`` folder (or a release folder):

- ``cog/<layer>.vrt``: the mosaic of ``cog/<layer>/<tile>.tif`` (one COG per map tile), with
  ``cog/<layer>_overview.tif`` as its overview (see `soilnet.mapping.cog`);
- ``stac/<layer>.json``: one item per layer (data = the mosaic, overview, tiles);
- ``stac/tiles/<layer>.json``: a FeatureCollection of one item per tile COG;
- ``preview.png``.

With ``mlflow_run_id`` set, the small files (mosaics, overviews, items, preview) are logged as artifacts
of that run (under ``map/``), the STAC items link to it, and the run's ``soilnet.serve`` tag holds the
command that opens the map in a browser; without it nothing is tracked.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field

from soilnet import storage
from soilnet.mapping.cog import CogInfo, export_cog
from soilnet.mapping.config import MapConfig, resolve_climate_end
from soilnet.mapping.map_cube import map_cube_url, open_map_cube
from soilnet.mapping.preview import layer_preview
from soilnet.mapping.stac import build_item, write_item, write_tile_items
from soilnet.mapping.viewer_command import serve_command

log = logging.getLogger(__name__)

#: MLflow tag holding the ``soilnet serve`` command of the run's map.
SERVE_TAG = "soilnet.serve"


@dataclass
class MapOutputs:
    """URLs of everything published for a map."""

    cogs: list[CogInfo] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    preview: str = ""

    def urls(self) -> list[str]:
        """The small outputs (mosaics, overview COGs, STAC items, preview); tile COGs are in ``cogs[i].tiles``."""
        return [c.url for c in self.cogs] + [c.overview for c in self.cogs] + self.items + [self.preview]


def log_to_mlflow(run_id: str, urls: list[str], tracking_uri: str | None = None) -> None:
    """Log files (local or s3://) as artifacts of an existing MLflow run, under ``map/``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="soilnet-map-") as tmp:
        for url in urls:
            local = os.path.join(tmp, os.path.basename(url))
            with storage.open_file(url, "rb") as src, open(local, "wb") as dst:
                dst.write(src.read())
            client.log_artifact(run_id, local, artifact_path="map")
    log.info("logged %d map outputs to MLflow run %s", len(urls), run_id)


def log_serve_command(run_id: str, map_url: str, tracking_uri: str | None = None) -> str:
    """Tag the run with the command that opens the published map in a browser (``soilnet.serve``)."""
    from mlflow import MlflowClient

    command = serve_command(map_url)
    MlflowClient(tracking_uri=tracking_uri).set_tag(run_id, SERVE_TAG, command)
    return command


def export_outputs(cfg: MapConfig, dest: str | None = None) -> MapOutputs:
    """Publish the map cube of ``cfg.out`` under ``dest`` (default ``cfg.out``): COGs, STAC items, preview.

    With ``cfg.mlflow_run_id`` set, the small outputs are logged to that run too.
    """
    cfg = resolve_climate_end(cfg)
    dest = dest or cfg.out
    cube = open_map_cube(map_cube_url(cfg.out))
    out = MapOutputs(preview=layer_preview(cube, cube.targets[0], storage.join(dest, "preview.png")))
    map_id = f"soilnet-map-{cfg.climate_end}-{cube.grid.res:g}m"
    run_link = f"runs:/{cfg.mlflow_run_id}" if cfg.mlflow_run_id else None
    model_link = cfg.model.bundle
    for layer in cube.layers:
        cog = export_cog(cube, layer, storage.join(dest, "cog"), cfg.cog_scale, cfg.cog_blocksize)
        out.cogs.append(cog)
        tiles = write_tile_items(
            cog, cube.grid, map_id, cfg.climate_end, storage.join(dest, "stac", "tiles", f"{layer}.json")
        )
        preview = out.preview if layer == cube.targets[0] else None
        about = cube.arrays[layer].attrs.get("long_name")
        item = build_item(
            cog, cube.grid, map_id, cfg.climate_end, run_link, model_link, preview, tiles, description=about
        )
        out.items.append(write_item(item, storage.join(dest, "stac", f"{layer}.json")))
    if cfg.mlflow_run_id:
        log_to_mlflow(cfg.mlflow_run_id, out.urls(), cfg.mlflow_tracking_uri)
        log_serve_command(cfg.mlflow_run_id, dest, cfg.mlflow_tracking_uri)
    return out
