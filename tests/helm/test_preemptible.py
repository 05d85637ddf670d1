"""The chart on preemptible clusters: a spot GPU group, the elastic range of training jobs, job retries, GCS FT."""

from __future__ import annotations

import shlex

import helm_python as helm
import pytest

from soilnet.config import load_config
from soilnet.mapping.config import MapConfig
from tests.helm.test_chart import CHART, by_kind, production_values, rayjob_templates, render, validate_ray

SPOT = {"ray": {"workers": {"gpuSpot": {"enabled": True}}}}
ELASTIC = {"elasticTraining": {"enabled": True, "minWorkers": 2, "maxWorkers": 6}}
GCS_FT = {
    "ray": {
        "gcsFaultTolerance": {
            "enabled": True,
            "redisAddress": "redis.soil.svc:6379",
            "redisPasswordSecret": {"name": "soilnet-redis", "key": "password"},
        }
    }
}


def worker_groups(values) -> dict[str, dict]:
    (cluster,) = by_kind(render(values), "RayCluster")
    validate_ray(cluster)
    return {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}


def test_spot_gpu_group_scales_from_zero_onto_tainted_spot_nodes():
    assert "gpu-spot" not in worker_groups(None)  # off unless asked for
    group = worker_groups(SPOT)["gpu-spot"]
    pod = group["template"]["spec"]
    assert (group["minReplicas"], group["replicas"]) == (0, 0)
    assert pod["nodeSelector"]["cloud.google.com/gke-spot"] == "true"
    assert {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["containers"][0]["image"].endswith("-gpu")
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    production = worker_groups(production_values())["gpu-spot"]["template"]["spec"]
    assert production["nodeSelector"] == {"node-pool": "gpu-a100-spot", "nvidia.com/gpu.present": "true"}


def entry_args(rayjob: dict) -> list[str]:
    """The soilnet options of a RayJob's entry point, as the shell splits them."""
    return shlex.split(rayjob["spec"]["entrypoint"])[3:]


def test_training_jobs_get_the_elastic_range_and_it_parses_into_their_config():
    templates = rayjob_templates(render(ELASTIC))
    for job in ("pretrain", "finetune"):
        args = entry_args(templates[job])
        assert args[-2:] == ["--set", "train.num_workers=[2,6]"]
        assert load_config(None, [args[-1]]).train.num_workers == (2, 6)
    assert "--set" not in entry_args(templates["map"])
    assert "--set" not in entry_args(rayjob_templates(render(None))["pretrain"])  # off by default
    with pytest.raises(helm.HelmRenderError, match=r"minWorkers \(6\) is larger than maxWorkers \(2\)"):
        render({"elasticTraining": {"enabled": True, "minWorkers": 6, "maxWorkers": 2}})


def test_nightly_rayjob_is_retried_after_a_lost_head():
    nightly = {"nightly": {"enabled": True, "mode": "raycronjob"}, "jobs": {"nightly": {"config": {"nightly": {}}}}}
    docs = render(nightly)
    assert rayjob_templates(docs)["nightly"]["spec"]["backoffLimit"] >= 1
    (cron,) = by_kind(docs, "RayCronJob")
    validate_ray(cron)
    assert cron["spec"]["jobTemplate"]["backoffLimit"] >= 1
    assert rayjob_templates(render(production_values()))["nightly"]["spec"]["backoffLimit"] >= 1
    jobs = production_values()["jobs"]
    for section in (jobs["map"]["config"]["map"], jobs["nightly"]["config"]["nightly"]["map"]):
        cfg = MapConfig(**section)
        assert cfg.lease_wait_s > cfg.lease_ttl_s  # the retry waits out the lost run's lease instead of refusing


def test_gcs_fault_tolerance_keeps_the_long_lived_cluster_state_in_external_redis():
    (cluster,) = by_kind(render(GCS_FT), "RayCluster")
    validate_ray(cluster)
    assert cluster["spec"]["gcsFaultToleranceOptions"] == {
        "redisAddress": "redis.soil.svc:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "soilnet-redis", "key": "password"}}},
    }
    (default,) = by_kind(render(None), "RayCluster")
    assert "gcsFaultToleranceOptions" not in default["spec"]
    with pytest.raises(helm.HelmRenderError, match="redisAddress is required"):
        render({"ray": {"gcsFaultTolerance": {"enabled": True}}})
    with pytest.raises(helm.HelmRenderError, match=r"long-lived RayCluster \(rayJob.clusterMode: shared\)"):
        render({**GCS_FT, "rayJob": {"clusterMode": "dedicated"}})


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"elasticTraining": {"minWorkers": 0}}, "/elasticTraining/minWorkers"),
        ({"elasticTraining": {"jobs": "pretrain"}}, "/elasticTraining/jobs"),
        ({"ray": {"gcsFaultTolerance": {"redisAddress": "redis://x"}}}, "/ray/gcsFaultTolerance/redisAddress"),
        ({"ray": {"workers": {"gpuSpot": {"minReplicas": -1}}}}, "/ray/workers/gpuSpot/minReplicas"),
    ],
)
def test_values_schema_rejects_wrong_preemptible_values(values, where):
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(values)
    assert where in str(err.value)
