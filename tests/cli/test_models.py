"""``soilnet models describe`` on the shipped recipes and on a bad file."""

from pathlib import Path

import typer
from typer.testing import CliRunner

from soilnet.cli.models import app

RECIPES = Path(__file__).resolve().parents[2] / "jobs" / "configs" / "recipes"
runner = CliRunner()


def test_describe_prints_parameter_counts() -> None:
    result = runner.invoke(app, ["describe", str(RECIPES / "dino.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "656,897" in result.output  # the Tresson head, trainable on the frozen backbone
    assert "ssl (dino)" in result.output
    assert "Feeding one H100 at 40% of its dense bf16 peak" in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 4}
    assert {"finetune", "pretrain"} <= set(rows)  # the fine-tuning and the DINO pretraining feed


def test_describe_reports_a_bad_recipe(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {}\n")
    result = runner.invoke(app, ["describe", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml: invalid recipe" in result.output


def test_app_is_a_typer_app() -> None:
    assert isinstance(app, typer.Typer)
