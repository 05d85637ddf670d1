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


def test_an_output_typed_on_the_command_line_is_used_a_configured_one_is_confined(tmp_path) -> None:
    url = gen.write_text(str(tmp_path / "lucas.csv"), gen.LUCAS_2009)
    typed = tmp_path / "mine" / "points.parquet"  # outside the workspace tmp_path / "ws"
    result = ingest(tmp_path / "ws", ["points", url, "--format", "lucas2009", "--out", str(typed)])
    assert result.exit_code == 0, result.output
    assert typed.exists()

    configured = tmp_path / "elsewhere.parquet"
    result = ingest(tmp_path / "ws", ["points", url, "--format", "lucas2009", "--set", f"data.points={configured}"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "data.points" in result.output and "outside the configured roots" in result.output
    assert not configured.exists()


def test_points_table_says_which_columns_fed_which_target_and_how_dates_were_set(tmp_path) -> None:
    header = gen.LUCAS_2015_HEADER.replace("pH_H20,", "")
    rows = [",".join(v for k, v in zip(gen.LUCAS_2015_HEADER.split(","), line.split(","), strict=True) if k != "pH_H20")
            for line in gen.LUCAS_2015.splitlines()[1:]]  # fmt: skip
    url = gen.write_text(str(tmp_path / "lucas.csv"), "\ufeff" + "\n".join([header, *rows]) + "\n")
    result = runner.invoke(
        app, ["points", url, "--format", "lucas2015", "--set", f"data.root={tmp_path}"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    facts: dict[str, str] = {}
    last = ""
    for line in result.output.splitlines():
        if line.count("│") == 3:  # a table row; wrapped values continue on rows with an empty key
            key, value = (cell.strip() for cell in line.split("│")[1:3])
            last = key or last
            facts[last] = f"{facts.get(last, '')} {value}".strip()
    assert facts["targets not in file"] == "ph_h2o"
    assert "soc_g_kg <- OC" in facts["targets"] and "ec_ms_m <- EC" in facts["targets"]
    assert facts["date"].startswith("2015-06-15 for every row (no date column")
    assert facts["rows all 0 -> missing"] == "1 (clay_pct, silt_pct, sand_pct)"
    assert "no column for targets ['ph_h2o']" in " ".join(result.output.split())  # the warning, logged
