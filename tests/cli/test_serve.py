"""`soilnet serve`: options and config merged into one `ServeConfig`; input errors are one line, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from soilnet.cli.app import app
from soilnet.config import ConfigError
from soilnet.serve.config import load_serve_config

runner = CliRunner()


def test_serve_without_a_map_or_with_a_missing_one_is_one_clear_error(tmp_path: Path) -> None:
    none = runner.invoke(app, ["serve"])
    assert none.exit_code == 2 and "exactly one of 'map'" in none.output
    missing = runner.invoke(app, ["serve", "--map", str(tmp_path / "nowhere"), "--port", "0"])
    assert missing.exit_code == 2 and "nowhere: no stac/*.json and no cog/" in missing.output
    assert "Traceback" not in missing.output


def test_options_override_the_yaml_section_and_are_taken_as_given(tmp_path: Path) -> None:
    config = tmp_path / "viewer.yaml"
    config.write_text("serve:\n  map: s3://bucket/maps/old\n  port: 9000\n  max_points: 500\n")
    cfg = load_serve_config(config, ["cluster_px=32"], {"map": "yes", "port": None})
    assert (cfg.map, cfg.port, cfg.max_points, cfg.cluster_px) == ("yes", 9000, 500, 32)  # "yes" stays a string
    with pytest.raises(ConfigError, match=r"port"):
        load_serve_config(None, [], {"map": "m", "port": 70000})
