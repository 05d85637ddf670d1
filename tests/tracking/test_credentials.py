"""A tracking URI with credentials (``http://user:token@host``) reaches no parameter, tag, artefact, log or spool."""

from __future__ import annotations

import logging

from mlflow import MlflowClient

from soilnet.config import SoilnetConfig, dump_config
from soilnet.tracking.config import TrackingConfig
from soilnet.tracking.runs import RunTracker

TOKEN = "pw-0123456789-secret"


def test_credentials_in_the_tracking_uri_are_recorded_nowhere(mlflow_server, tmp_path, caplog, capfd):
    scheme, _, host = mlflow_server.partition("://")
    uri = f"{scheme}://soilnet:{TOKEN}@{host}"  # the server ignores the basic-auth header
    cfg = SoilnetConfig(tracking=TrackingConfig(uri=uri, experiment="credentials"))
    caplog.set_level(logging.DEBUG, logger="soilnet")
    tracker = RunTracker.start(cfg.tracking, str(tmp_path), "credentials")
    tracker.log_params({"tracking": cfg.tracking.model_dump(mode="json")})
    tracker.set_tags({"soilnet.tracking_uri": uri})
    tracker.log_text(dump_config(cfg), "config.yaml")
    record = tracker._record({"op": "log_metrics", "metrics": []})
    tracker.finish()

    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(tracker.run_id)
    config_file = client.download_artifacts(tracker.run_id, "config.yaml", str(tmp_path))
    with open(config_file) as handle:
        config_text = handle.read()
    printed = capfd.readouterr()
    stored = "\n".join(
        [*run.data.params.values(), *run.data.tags.values(), config_text, str(record), caplog.text, *printed]
    )
    assert run.data.params["tracking.uri"].startswith("http://***@")  # the URI is still recorded, masked
    assert "uri: http://***@" in config_text and "MLflow run credentials" in caplog.text
    assert TOKEN not in stored
