"""The soilnet configs inside the chart are soilnet configs: each loads as its job's pod loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from soilnet.config import ConfigError
from soilnet.submission.job_configs import JOB_LOADERS, check_model_names, load_job_config
from tests.helm.test_chart import CHART, ROOT, by_kind, production_values, render

NIGHTLY_CONFIG = ROOT / "jobs" / "configs" / "nightly-europe.yaml"


def mounted_configs(docs: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """Each job config of the rendered ConfigMap written as the pod sees it (/etc/soilnet/jobs/<name>.yaml)."""
    (configs,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-job-configs")]
    paths = {}
    for key, text in configs["data"].items():
        path = folder / key
        path.write_text(text)
        paths[key.removesuffix(".yaml")] = path
    return paths


def loaded(paths: dict[str, Path]) -> dict[str, Any]:
    """The configured (non-empty) jobs' configs, loaded by their entry points' loaders."""
    return {job: load_job_config(job, path) for job, path in paths.items() if yaml.safe_load(path.read_text())}


@pytest.mark.parametrize("values", ["defaults", "production"])
def test_every_chart_job_config_loads_as_its_pod_loads_it(values: str, tmp_path: Path) -> None:
    docs = render(production_values() if values == "production" else None)
    paths = mounted_configs(docs, tmp_path)
    assert set(paths) <= set(JOB_LOADERS), "every job of the chart has an entry point with a known config"
    for job in paths:
        assert (ROOT / "jobs" / f"{job}.py").exists(), f"jobs/{job}.py"
    configs = loaded(paths)
    check_model_names(configs)
    if values == "production":
        assert {"map", "nightly", "pretrain", "finetune"} <= set(configs)
        assert configs["nightly"].map.model.bundle == "models:/soilnet-soc_g_kg@champion"


def test_todays_production_map_config_is_refused(tmp_path: Path) -> None:
    """The config the chart shipped before (region/crs/model_uri/output_url) is not a map config."""
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({"region": "europe", "crs": "EPSG:3035", "model_uri": "models:/soilnet/champion"}))
    with pytest.raises(ConfigError, match="model_uri"):
        load_job_config("map", path)


def test_unconfigured_jobs_are_refused_by_the_chart() -> None:
    with pytest.raises(helm.HelmValuesError, match=r"/jobs/nightly/config': minProperties"):
        render({"nightly": {"enabled": True}})
    with pytest.raises(helm.HelmValuesError, match=r"/jobs/nightly/config': minProperties"):
        render({"nightly": {"enabled": True, "mode": "raycronjob"}})
    with pytest.raises(helm.HelmRenderError, match=r"nightly\.job needs a configuration: jobs\.map\.config is empty"):
        render({"nightly": {"enabled": True, "job": "map"}})
    with pytest.raises(helm.HelmRenderError, match=r"jobs\.map\.run needs a configuration: jobs\.map\.config is empty"):
        render({"jobs": {"map": {"run": True}}})


def test_nightly_cronjob_runs_the_configured_nightly_job(tmp_path: Path) -> None:
    config = yaml.safe_load(NIGHTLY_CONFIG.read_text())
    docs = render(
        {"nightly": {"enabled": True, "webhookSecret": {"name": "hook"}}, "jobs": {"nightly": {"config": config}}}
    )
    (cron,) = by_kind(docs, "CronJob")
    command = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == ["soilnet", "k8s", "run", "nightly"]
    (templates,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-rayjob-templates")]
    rayjob = yaml.safe_load(templates["data"]["nightly.yaml"])
    assert rayjob["spec"]["entrypoint"] == "python -m jobs.nightly --config /etc/soilnet/jobs/nightly.yaml"
    (cluster,) = by_kind(docs, "RayCluster")
    env = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    (hook,) = [e for e in env if e["name"] == "SOILNET_NIGHTLY_WEBHOOK_URL"]
    assert hook["valueFrom"]["secretKeyRef"]["name"] == "hook"
    configs = loaded(mounted_configs(docs, tmp_path))
    assert configs["nightly"].map.climate_end == "latest"


@pytest.mark.parametrize(
    ("training", "mapping"),
    [("demo.yaml", "map.yaml"), ("train-europe.yaml", "map-europe.yaml"), ("train-europe.yaml", "nightly-europe.yaml")],
)
def test_training_registers_what_the_map_loads(training: str, mapping: str) -> None:
    folder = ROOT / "jobs" / "configs"
    job = "nightly" if mapping.startswith("nightly") else "map"
    configs = {"finetune": load_job_config("finetune", folder / training), job: load_job_config(job, folder / mapping)}
    check_model_names(configs)


def test_a_map_of_another_model_name_is_refused(tmp_path: Path) -> None:
    folder = ROOT / "jobs" / "configs"
    path = tmp_path / "map.yaml"
    tree = yaml.safe_load((folder / "map-europe.yaml").read_text())
    tree["map"]["model"]["bundle"] = "models:/soilnet@champion"
    path.write_text(yaml.safe_dump(tree))
    configs = {
        "finetune": load_job_config("finetune", folder / "train-europe.yaml"),
        "map": load_job_config("map", path),
    }
    with pytest.raises(ValueError, match=r"jobs\.map maps models:/soilnet@champion, but training registers"):
        check_model_names(configs)


def test_schema_requires_a_nightly_config_when_enabled() -> None:
    import json

    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    validator = jsonschema.Draft7Validator(schema)
    validator.validate(values)
    values["nightly"]["enabled"] = True
    with pytest.raises(jsonschema.ValidationError, match=r"should be non-empty|does not have enough properties"):
        validator.validate(values)
