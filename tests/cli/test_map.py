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


def test_plan_projects_wall_time_from_measured_rates(tiny_demo, tiny_bundle_url, tmp_path) -> None:
    config = tmp_path / "map.yaml"
    fields = {"raster": tiny_demo.raster, "climate": tiny_demo.climate, "out": str(tmp_path / "out")}
    settings = {"model": {"bundle": tiny_bundle_url}, "climate_end": "2018-06", "resolution_m": 240, "tile_px": 8}
    config.write_text(yaml.safe_dump({"map": {**fields, **settings, "chunk_px": 8}}))
    rates = tmp_path / "rates.json"
    rates.write_text(
        '{"source": "scale.py test", "read_decode_bytes_per_core_s": 4e7, "write_px_per_s": 1e6, '
        '"tile_overhead_s": 0.02, "cpu_predict_px_per_core_s": 800}'
    )
    result = CliRunner().invoke(app, ["plan", "--config", str(config), "--gpus", "64", "--rates", str(rates)])
    assert result.exit_code == 0, result.output
    assert "wall time on 64 GPU(s)" in result.output and "scale.py test" in result.output
    assert "measured 40.0 MB/s per core" in result.output and "ASSUMED" in result.output
    result = CliRunner().invoke(app, ["plan", "--config", str(config), "--rates", str(tmp_path / "none.json")])
    assert result.exit_code == 0 and "no measured rates" in result.output
