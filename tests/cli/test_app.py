"""The soilnet CLI: demo-data, validate, config, and clear errors with exit status 2."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from soilnet.cli.app import app

runner = CliRunner()


def test_demo_data_then_validate_and_refuse_overwrite(tmp_path: Path) -> None:
    out = str(tmp_path / "ws")
    args = ["demo-data", "--out", out, "--size-km", "3", "--n-points", "20", "--set", "raster_layout.shard=128"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ws" / "raster.zarr" / "zarr.json").exists()
    ok = runner.invoke(app, ["validate", "raster", f"{out}/raster.zarr", "--band", "ndvi"])
    assert ok.exit_code == 0 and "valid" in ok.output and "14 bands" in ok.output
    pts = runner.invoke(app, ["validate", "points", f"{out}/points.parquet"])
    assert pts.exit_code == 0 and "20 points" in pts.output
    config = tmp_path / "ws.yaml"
    config.write_text(f"data:\n  root: {out}\n")
    by_config = runner.invoke(app, ["validate", "climate", "--config", str(config)])  # URL from data.climate
    assert by_config.exit_code == 0 and f"{out}/climate.zarr" in by_config.output and "months" in by_config.output
    by_set = runner.invoke(app, ["validate", "points", "--set", f"data.root={out}", "--band", "soc_g_kg"])
    assert by_set.exit_code == 0 and "20 points" in by_set.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["config", "--set", "demo.sed=1"])
    assert bad.exit_code == 2 and "demo.sed" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["validate", "raster", str(tmp_path / "nothing.zarr")])
    assert missing.exit_code == 2 and "nothing.zarr" in missing.output
    small = runner.invoke(app, ["demo-data", "--out", str(tmp_path / "s"), "--size-km", "0.5"])
    assert small.exit_code == 2 and "too small" in small.output


def test_config_shows_effective_yaml() -> None:
    result = runner.invoke(app, ["config", "--set", "demo.seed=11"])
    assert result.exit_code == 0 and "seed: 11" in result.output


#: Libraries that take seconds to import: no command's --help may need them (they load inside the commands).
HEAVY = ("torch", "ray", "mlflow", "sklearn", "ee", "rasterio", "zarr", "xarray", "pandas", "numpy", "pyproj", "yaml")

HELP_TREE = """
import sys
import typer
import typer.main
from soilnet.cli.app import app

def walk(command):
    command.get_help(typer.Context(command))
    for sub in getattr(command, "commands", {}).values():
        walk(sub)

walk(typer.main.get_command(app))
print("heavy:", *(m for m in HEAVY if m in sys.modules))
"""


def test_help_of_every_command_imports_no_heavy_library() -> None:
    code = HELP_TREE.replace("HEAVY", repr(HEAVY))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert "Usage" in done.stdout
    assert done.stdout.splitlines()[-1].split() == ["heavy:"]
    assert "Usage" in runner.invoke(app, ["map", "run", "--help"]).output
