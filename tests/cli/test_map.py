"""``soilnet map``: bad configs and missing models are one clear error line (exit status 2)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from soilnet.cli.map import app


def test_plan_errors_are_one_clear_line(tiny_demo, tmp_path) -> None:
    bundle = tmp_path / "no-bundle"
    config = tmp_path / "map.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "map": {
                    "raster": tiny_demo.raster,
                    "climate": tiny_demo.climate,
                    "out": str(tmp_path / "out"),
                    "model": {"bundle": str(bundle)},
                    "climate_end": "2018-06",
                    "resolution_m": 240,
                    "tile_px": 8,
                    "chunk_px": 8,
                }
            }
        )
    )
    result = CliRunner().invoke(app, ["plan", "--config", str(config)])
    assert result.exit_code == 2 and "not a model bundle" in result.output
    result = CliRunner().invoke(app, ["plan", "--config", str(config), "--set", "tile_px=12"])
    assert result.exit_code == 2 and "tile_px" in result.output and "multiple of chunk_px" in result.output
