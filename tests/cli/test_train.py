"""`soilnet evaluate --regions`: the fine-tuned and baseline out-of-fold predictions reach the regional report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import soilnet.training.evaluate as evaluate_module
import soilnet.training.finetune as finetune_module
import soilnet.training.regional as regional_module
from soilnet.cli.app import app
from soilnet.evaluation.baselines import CrossValResult
from soilnet.evaluation.metrics import per_fold_metrics

runner = CliRunner()


def test_evaluate_with_regions_reports_every_model_of_the_primary_target(monkeypatch) -> None:
    table = pd.DataFrame({"id": list("abcd"), "x": 0.0, "y": 0.0, "target": [1.0, 2.0, 3.0, 4.0], "fold": [0, 0, 1, 1]})
    cv = SimpleNamespace(run_id="run", table=table, predictions=np.array([1.5, 2.0, 3.0, 4.5]), source=None)
    cv.calibration = None
    rf = CrossValResult("random_forest", np.array([1.0, 2.5, 3.5, 4.0]), per_fold_metrics(
        table["target"], [1.0, 2.5, 3.5, 4.0], table["fold"], "random_forest", "soc_g_kg"
    ))  # fmt: skip
    per_fold = rf.per_fold.assign(model="finetuned")
    comparison = evaluate_module.Comparison(per_fold, pd.DataFrame(), "COMPARISON", baselines=[rf])
    seen = {}

    def report(data, got_table, predictions, regions, field, target, tracker):
        seen.update(regions=regions, field=field, target=target, models=sorted(predictions))
        return regional_module.RegionalReport(pd.DataFrame(), pd.DataFrame(), "REGIONS")

    monkeypatch.setattr(finetune_module, "run_cross_validation", lambda *a, **k: cv)
    monkeypatch.setattr(evaluate_module, "compare_with_baselines", lambda *a, **k: comparison)
    monkeypatch.setattr(regional_module, "regional_report", report)
    result = runner.invoke(app, ["evaluate", "--regions", "zones.geojson", "--region-field", "zone"])
    assert result.exit_code == 0, result.output
    assert seen == {
        "regions": "zones.geojson",
        "field": "zone",
        "target": "soc_g_kg",
        "models": ["finetuned", "random_forest"],
    }
    lines = result.output.splitlines()
    assert lines.index("REGIONS") == lines.index("COMPARISON") + 1
