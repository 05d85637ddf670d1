"""`soilnet experiment`: names its design, prints the table, the tests and, last, the headline."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

import soilnet.experiments.run as run_module
from soilnet.cli.app import app

runner = CliRunner()


def test_the_headline_is_the_last_line(monkeypatch) -> None:
    seen = {}

    def fake(cfg, design):
        seen.update(design=design.name, epochs=cfg.finetune.epochs, seeds=cfg.experiment.seeds)
        empty = pd.DataFrame()
        line = "EXPERIMENT: best=resnet+glam+lstm rmse=3.900 fair_rf_rmse=4.100 p=0.02 (target: ...)"
        report = run_module.ExperimentReport(design.name, "abc", empty, empty, empty, "TABLE", "TESTS", line)
        report.skipped = ["rf/seed0"]
        return report

    monkeypatch.setattr(run_module, "run_experiment", fake)
    result = runner.invoke(app, ["experiment", "soilnet-table", "--quick", "--set", "experiment.seeds=2"])
    assert result.exit_code == 0, result.output
    # --quick's overrides apply (2 epochs, 1 seed), and --set still wins over them
    assert seen == {"design": "soilnet-table", "epochs": 2, "seeds": 2}
    lines = result.output.strip().splitlines()
    assert "skipped (finished earlier): rf/seed0" in lines[0] and "TABLE" in lines and "TESTS" in lines
    assert lines[-1].startswith("EXPERIMENT: best=resnet+glam+lstm")


def test_an_unknown_design_is_one_clear_line() -> None:
    result = runner.invoke(app, ["experiment", "no-such-table"])
    assert result.exit_code != 0
    assert "unknown experiment 'no-such-table'" in result.output and "soilnet-table" in result.output
