"""The viewer's web app (FastAPI): the page, Leaflet, tiles, values at a point, and the sample points.

Routes: ``/`` the page; ``/static/*`` its script and style; ``/vendor/leaflet/*`` Leaflet as npm
installed it (`LEAFLET`); ``/api/layers`` layers, units and legends; ``/tiles/{layer}/{z}/{x}/{y}.png``;
``/api/value?lon=&lat=`` every layer's value at a point; ``/api/points?bbox=&zoom=`` GeoJSON of the
points in view; ``/healthz``. Nothing is fetched from outside at run time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from soilnet.serve.catalog import find_sources
from soilnet.serve.config import ServeConfig
from soilnet.serve.layers import Layer, describe
from soilnet.serve.points import PointLayer
from soilnet.serve.render import point_values, render_tile

log = logging.getLogger(__name__)

PAGE = Path(__file__).resolve().parent / "page"
#: Leaflet's files, installed by ``make install`` (npm ci in soilnet/serve/web).
LEAFLET = Path(__file__).resolve().parent / "web" / "node_modules" / "leaflet" / "dist"


class MissingAssetsError(FileNotFoundError):
    """Leaflet is not installed next to the package (``make install`` runs npm for it)."""


@dataclass
class Viewer:
    """What the app serves: the configured layers (in order) and the points, if any."""

    cfg: ServeConfig
    layers: dict[str, Layer]
    points: PointLayer | None

    @classmethod
    def load(cls, cfg: ServeConfig) -> Viewer:
        """Find and describe the layers, read the points table."""
        sources = find_sources(cfg.map, cfg.stac)
        layers = [describe(s, cfg.percentiles, cfg.max_classes) for s in sources]
        layers.sort(key=lambda layer: (layer.kind == "classes", layer.name.endswith("_std"), layer.name))
        points = PointLayer.load(cfg.points) if cfg.points else None
        log.info(
            "serving %d layers (%s)%s", len(layers), ", ".join(x.name for x in layers), " and points" * bool(points)
        )
        return cls(cfg, {layer.name: layer for layer in layers}, points)

    def summary(self) -> dict[str, Any]:
        """The ``/api/layers`` document."""
        bounds = [layer.bounds for layer in self.layers.values()]
        union = [
            min(b[0] for b in bounds),
            min(b[1] for b in bounds),
            max(b[2] for b in bounds),
            max(b[3] for b in bounds),
        ]
        return {
            "source": self.cfg.map or self.cfg.stac,
            "bounds": union,
            "layers": [layer.to_json() for layer in self.layers.values()],
            "points": self.points is not None,
            "tile_px": self.cfg.tile_px,
        }


def create_app(viewer: Viewer) -> FastAPI:
    """The FastAPI app serving one `Viewer`."""
    if not (LEAFLET / "leaflet.js").is_file():
        raise MissingAssetsError(
            f"{LEAFLET}: Leaflet is not installed; run `make install` (it runs `npm ci` in soilnet/serve/web)"
        )
    app = FastAPI(title="soilnet map viewer", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=PAGE), name="static")
    app.mount("/vendor/leaflet", StaticFiles(directory=LEAFLET), name="leaflet")
    summary = viewer.summary()

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/layers")
    def layers() -> dict[str, Any]:
        return summary

    @app.get("/tiles/{name}/{z}/{x}/{y}.png")
    def tile(name: str, z: int, x: int, y: int) -> Response:
        layer = viewer.layers.get(name)
        if layer is None:
            raise HTTPException(404, f"no layer {name!r} (layers: {list(viewer.layers)})")
        png = render_tile(layer, x, y, z, viewer.cfg.tile_px)
        if png is None:
            return Response(status_code=204)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/value")
    def value(
        lon: Annotated[float, Query(ge=-180, le=180)], lat: Annotated[float, Query(ge=-90, le=90)]
    ) -> dict[str, Any]:
        return {"lon": lon, "lat": lat, "values": point_values(list(viewer.layers.values()), lon, lat)}

    @app.get("/api/points")
    def points(bbox: str, zoom: Annotated[int, Query(ge=0, le=30)]) -> dict[str, Any]:
        if viewer.points is None:
            raise HTTPException(404, "no points table given (soilnet serve --points URL)")
        try:
            west, south, east, north = (float(v) for v in bbox.split(","))
        except ValueError as exc:
            raise HTTPException(422, f"bbox {bbox!r}: expected west,south,east,north in degrees") from exc
        return viewer.points.geojson((west, south, east, north), zoom, viewer.cfg.max_points, viewer.cfg.cluster_px)

    return app
