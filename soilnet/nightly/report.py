"""Each night as an MLflow run (inputs, tiles recomputed, the gate's figures, the version), and the
failure webhook.

The run is created before the night starts (the map's outputs are logged into it) and ends FINISHED
for a published or empty night, FAILED for a refused or broken one, with the reason as a tag.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

from soilnet.nightly.config import NightlyConfig
from soilnet.nightly.run import NightReport
from soilnet.redaction import redact_userinfo

log = logging.getLogger(__name__)


class NightRun:
    """The MLflow run of one night."""

    def __init__(self, cfg: NightlyConfig) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=cfg.tracking_uri)
        experiment = self.client.get_experiment_by_name(cfg.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(cfg.experiment)
        tags = {"soilnet.job": "nightly", "mlflow.runName": "nightly"}
        self.run_id = self.client.create_run(experiment_id, tags=tags).info.run_id
        params = {"releases": cfg.releases, "raster": cfg.map.raster, "climate": cfg.map.climate, "keep": cfg.keep}
        params.update({f"gate.{k}": v for k, v in cfg.gate.model_dump().items()})
        params["model.source"] = cfg.map.model.bundle or "checkpoints"
        for key, value in params.items():
            self.client.log_param(self.run_id, key, redact_userinfo(str(value)))

    def finish(self, report: NightReport | None, reason: str) -> None:
        """Log the night's figures and end the run (FAILED unless published or nothing new)."""
        status = report.status if report is not None else "failed"
        ok = status in ("published", "nothing-new")
        self.client.set_tag(self.run_id, "soilnet.nightly.status", status)
        self.client.set_tag(self.run_id, "soilnet.nightly.reason", redact_userinfo(reason)[:5000])
        if report is not None:
            metrics = {
                "tiles": report.tiles,
                "tiles_recomputed": len(report.recomputed),
                "tiles_compared": report.compared,
                "changed_pct": report.changed_pct,
                "missing_pct": report.missing_pct,
                **{f"seconds_{k}": v for k, v in report.seconds.items()},
            }
            for key, value in metrics.items():
                self.client.log_metric(self.run_id, key, float(value))
            self.client.log_param(self.run_id, "climate_end", report.climate_end)
            self.client.log_param(self.run_id, "model.version", report.model.get("version", "-"))
            if report.version:
                self.client.set_tag(self.run_id, "soilnet.nightly.version", report.version)
            self.client.log_text(self.run_id, "\n".join(report.recomputed), "tiles_recomputed.txt")
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


def call_webhook(env: str, payload: dict[str, Any]) -> bool:
    """POST the payload as JSON to the URL in ``$env`` (unset: nothing); a failed call is logged, never raised."""
    url = os.environ.get(env, "").strip()
    if not url:
        return False
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return True
    except OSError as exc:
        log.warning("failure webhook from $%s not delivered: %s", env, exc)
        return False
