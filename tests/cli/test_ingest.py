"""``soilnet ingest`` commands: counts printed, clear errors for bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from typer.testing import CliRunner

from soilnet.cli.ingest import app
from soilnet.data.climate_cube import open_climate_cube
from soilnet.data.raster_cube import open_raster_cube

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "ingest" / "fixtures.py"
spec = importlib.util.spec_from_file_location("soilnet_tests_ingest_fixtures_cli", FIXTURES)
gen = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(gen)  # type: ignore[union-attr]

runner = CliRunner()


def ingest(root: Path, args: list[str]):
    """Run ``soilnet ingest`` with ``root`` as the workspace (outputs must lie under it)."""
    return runner.invoke(app, [*args, "--set", f"data.root={root}"])


def test_ingest_points_prints_counts_by_reason(tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "lucas.csv"), gen.LUCAS_2009)
    out = tmp_path / "points.parquet"
    result = ingest(tmp_path, ["points", url, "--format", "lucas2009", "--out", str(out), "--set", "log_level=WARNING"])
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "rejected: non-numeric value" in result.output
    assert out.exists() and (tmp_path / "points.rejects.csv").exists()


def test_ingest_raster_and_climate(tmp_path) -> None:
    tif = gen.write_scene(str(tmp_path / "a.tif"), "utm_uint16")
    cube = tmp_path / "raster.zarr"
    result = ingest(tmp_path, ["raster", tif, "--bands", "elevation,slope", "--cube", str(cube),
                               "--resampling", "nearest", "--set", "raster_layout.shard=64",
                               "--set", "raster_layout.inner_chunk=32"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "shards written" in result.output
    assert open_raster_cube(str(cube)).band_names == ("elevation", "slope")
    again = ingest(tmp_path, ["raster", tif, "--bands", "elevation,slope", "--cube", str(cube),
                                "--resampling", "nearest", "--set", "raster_layout.shard=64",
                                "--set", "raster_layout.inner_chunk=32"])  # fmt: skip
    assert again.exit_code == 0 and "skipped" in again.output

    urls = gen.write_terraclimate(str(tmp_path), ["pr", "swe"], [2020])
    result = ingest(tmp_path, ["climate", *urls, "--cube", str(tmp_path / "c.zarr"), "--variables", "swe,pr"])
    assert result.exit_code == 0, result.output
    assert open_climate_cube(str(tmp_path / "c.zarr")).variables == ("swe", "pr")


def test_bad_input_is_one_clear_error(tmp_path) -> None:
    bad = gen.write_text(str(tmp_path / "bad.tif"), "not a tiff")
    result = ingest(tmp_path, ["raster", bad, "--bands", "elevation", "--cube", str(tmp_path / "c.zarr")])
    assert result.exit_code == 2
    assert "bad.tif" in result.output and "Traceback" not in result.output


def test_outputs_outside_the_workspace_are_refused(tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "lucas.csv"), gen.LUCAS_2009)
    result = ingest(
        tmp_path / "ws", ["points", url, "--format", "lucas2009", "--out", str(tmp_path / "points.parquet")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--out / data.points" in result.output and "outside the configured roots" in result.output
    assert not (tmp_path / "points.parquet").exists()
