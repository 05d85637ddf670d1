"""Fixtures of the viewer tests: a small published map (real COG/STAC export) and its points table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from soilnet.data.grid import Grid
from soilnet.mapping.outputs import MapOutputs
from tests.fixtures.map_outputs import map_grid, write_map_outputs, write_map_points

WIDTH, HEIGHT = 48, 40
N_POINTS = 3000


@dataclass
class PublishedMap:
    """A map job's output folder, what was published there, its grid and its points table."""

    out: str
    outputs: MapOutputs
    grid: Grid
    points_url: str
    points: pd.DataFrame

    def cog(self, layer: str) -> str:
        """URL of a layer's COG."""
        return next(c.url for c in self.outputs.cogs if c.layer == layer)


@pytest.fixture(scope="session")
def published_map(tmp_path_factory: pytest.TempPathFactory) -> PublishedMap:
    """A 48 x 40 px map at 240 m (mean, std, missing-input mask) and 3000 points over it."""
    root = tmp_path_factory.mktemp("served")
    out = str(root / "map")
    outputs = write_map_outputs(out, WIDTH, HEIGHT)
    grid = map_grid(WIDTH, HEIGHT)
    points_url = str(root / "points.parquet")
    return PublishedMap(out, outputs, grid, points_url, write_map_points(points_url, grid, N_POINTS))
