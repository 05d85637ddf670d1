"""Rendering the chart offline and validating what it renders (shared by the chart tests)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "soilnet"
CRD_DIR = ROOT.parent / "shared" / "kuberay-crds"
K8S_VERSION = "1.31.0"


def render(values: dict[str, Any] | None = None, name: str = "demo", namespace: str = "soil") -> list[dict[str, Any]]:
    """Every object the chart renders for ``values`` (NOTES.txt excluded)."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=name, namespace=namespace)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def production_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values-production.yaml").read_text())


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def validate_core(obj: dict[str, Any]) -> None:
    """Strict validation of a core Kubernetes object."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    """A validator for the openAPIV3Schema of a ray.io/v1 kind, or a skip when the CRD folder is absent."""
    path = CRD_DIR / f"ray.io_{kind.lower()}s.yaml"
    if not path.exists():
        pytest.skip(f"KubeRay CRD schemas not found at {CRD_DIR}: ray.io objects are not validated")
    crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)  # the CRDs are ~1 MB each
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def validate_ray(obj: dict[str, Any]) -> None:
    """Validate a ray.io object against its CRD schema and each pod template as a v1 PodTemplate."""
    crd_validator(obj["kind"]).validate(obj)
    for template in pod_templates(obj):
        validate_core({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template})


def cluster_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The RayCluster specs inside a RayCluster, RayJob or RayCronJob."""
    spec = obj["spec"]
    if obj["kind"] == "RayCluster":
        return [spec]
    job_spec = spec["jobTemplate"] if obj["kind"] == "RayCronJob" else spec
    return [job_spec["rayClusterSpec"]] if "rayClusterSpec" in job_spec else []


def pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pod template of a ray.io object: head, workers, submitter."""
    found = []
    for spec in cluster_specs(obj):
        found.append(spec["headGroupSpec"]["template"])
        found += [g["template"] for g in spec.get("workerGroupSpecs", [])]
    job_spec = obj["spec"].get("jobTemplate", obj["spec"])
    if "submitterPodTemplate" in job_spec:
        found.append(job_spec["submitterPodTemplate"])
    return found


def rayjob_templates(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The RayJob manifests held in the templates ConfigMap, by job name."""
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-rayjob-templates")]
    return {key.removesuffix(".yaml"): yaml.safe_load(text) for key, text in cm["data"].items()}


# ---------------------------------------------------------------- lint and schema


@pytest.mark.parametrize("values", [None, "production"], ids=["default", "production"])
def test_chart_lints_strictly(values):
    vals = production_values() if values == "production" else None
    report = helm.lint(CHART, vals, strict=True, kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"ray": {"workers": {"cpu": {"maxReplicas": 0}}}}, "/ray/workers/cpu/maxReplicas"),
        ({"ray": {"authMode": "none"}}, "/ray/authMode"),
        ({"ray": {"head": {"rayStartParams": {"num-gpus": 1}}}}, "/ray/head/rayStartParams/num-gpus"),
        ({"ray": {"head": {"shmSize": "lots"}}}, "/ray/head/shmSize"),
        ({"nightly": {"mode": "systemd"}}, "/nightly/mode"),
        ({"nightly": {"schedule": "every night"}}, "/nightly/schedule"),
        ({"mlflow": {"backendStore": {"type": "mysql-file"}}}, "/mlflow/backendStore/type"),
        ({"objectStore": {"bucket": "Not_A_Bucket"}}, "/objectStore/bucket"),
        ({"objectStore": {"endpoint": "s3.example.org"}}, "/objectStore/endpoint"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
        ({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, "/containerSecurityContext"),
        ({"jobs": {"map": {"run": "yes"}}}, "/jobs/map/run"),
        ({"imagePullSecrets": "regcred"}, "/imagePullSecrets"),
        ({"mlflow": {"typo": 1}}, "/mlflow"),
    ],
)
def test_values_schema_rejects_wrong_values(values, where):
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(values)
    assert where in str(err.value)


def test_values_schema_accepts_defaults_and_production():
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(None)
        chart.validate_schema(production_values())


def test_schema_describes_every_default_value():
    """Every key of values.yaml is declared in values.schema.json (pass-through k8s objects aside)."""
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def resolve(node):
        return schema["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node

    def walk(value, node, path):
        node = resolve(node)
        assert "description" in node or "properties" in node or "$ref" in node, path
        if isinstance(value, dict) and node.get("additionalProperties") is False:
            for key, sub in value.items():
                assert key in node["properties"], f"{path}.{key} is not in values.schema.json"
                walk(sub, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "values")


# ---------------------------------------------------------------- objects


@pytest.mark.parametrize("values", [None, "production"], ids=["default", "production"])
def test_every_rendered_object_validates(values):
    docs = render(production_values() if values == "production" else None)
    kinds = {d["kind"] for d in docs}
    assert {"RayCluster", "Deployment", "Service", "NetworkPolicy", "Pod"} <= kinds
    nightly = {"CronJob", "Role"}  # the nightly job needs a config: only production values configure it
    assert nightly <= kinds if values == "production" else not nightly & kinds
    for obj in docs:
        if obj["apiVersion"].startswith("ray.io/"):
            validate_ray(obj)
        else:
            validate_core(obj)
    for job, rayjob in rayjob_templates(docs).items():
        assert rayjob["metadata"]["labels"]["soilnet.io/job"] == job
        validate_ray(rayjob)


def test_raycluster_head_takes_no_tasks_and_workers_autoscale():
    (cluster,) = by_kind(render(), "RayCluster")
    spec = cluster["spec"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert spec["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    assert (groups["gpu"]["minReplicas"], groups["gpu"]["maxReplicas"]) == (0, 2)
    gpu_pod = groups["gpu"]["template"]["spec"]
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu_pod["containers"][0]["image"].endswith(":0.1.0-gpu")
    assert gpu_pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    shm = {v["name"]: v for v in gpu_pod["volumes"]}["dshm"]["emptyDir"]
    assert shm == {"medium": "Memory", "sizeLimit": "16Gi"}


def test_head_cannot_be_given_cpus_through_values():
    (cluster,) = by_kind(
        render({"ray": {"head": {"rayStartParams": {"num-cpus": "8", "log-color": "false"}}}}), "RayCluster"
    )
    params = cluster["spec"]["headGroupSpec"]["rayStartParams"]
    assert params["num-cpus"] == "0"
    assert params["log-color"] == "false"


def test_every_pod_runs_non_root_without_privilege_escalation():
    docs = render(production_values())
    pods = [d["spec"] for d in by_kind(docs, "Pod")]
    pods += [d["spec"]["template"]["spec"] for d in by_kind(docs, "Deployment")]
    pods += [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in by_kind(docs, "CronJob")]
    pods += [t["spec"] for d in by_kind(docs, "RayCluster") for t in pod_templates(d)]
    pods += [t["spec"] for d in rayjob_templates(docs).values() for t in pod_templates(d)]
    assert len(pods) >= 7
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["imagePullSecrets"] == [{"name": "registry-example-org"}]
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_credentials_come_only_from_secrets():
    docs = render(production_values())
    assert by_kind(docs, "Secret") == []
    text = yaml.safe_dump_all(docs)
    (mlflow,) = by_kind(docs, "Deployment")
    env = {e["name"]: e for e in mlflow["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "soilnet-mlflow-db",
        "key": "MLFLOW_BACKEND_STORE_URI",
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "soilnet-s3"
    assert "postgresql://" not in text


def test_small_install_keeps_mlflow_in_sqlite_on_a_volume():
    docs = render()
    (pvc,) = by_kind(docs, "PersistentVolumeClaim")
    (mlflow,) = by_kind(docs, "Deployment")
    pod = mlflow["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"] == "sqlite:////data/mlflow.db"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["volumes"]
    command = pod["containers"][0]["command"]
    assert command[command.index("--artifacts-destination") + 1] == "s3://soilnet/mlflow"
    with pytest.raises(helm.HelmRenderError, match="replicas must be 1"):
        render({"mlflow": {"replicas": 2}})
    with pytest.raises(helm.HelmRenderError, match="existingSecret is required"):
        render({"mlflow": {"backendStore": {"type": "secret"}}})


def test_mlflow_is_reachable_only_from_the_namespace_and_has_a_helm_test():
    docs = render()
    (policy,) = by_kind(docs, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "mlflow"
    (test_pod,) = by_kind(docs, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "http://demo-soilnet-mlflow.soil.svc:5000" in test_pod["spec"]["containers"][0]["command"]


NIGHTLY_ON = {"nightly": {"enabled": True}, "jobs": {"nightly": {"config": {"nightly": {"releases": "s3://b/r"}}}}}


def test_nightly_cronjob_creates_the_nightly_rayjob_with_least_privilege():
    docs = render(NIGHTLY_ON)
    (cron,) = by_kind(docs, "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["containers"][0]["command"][:4] == ["soilnet", "k8s", "run", "nightly"]
    assert "/etc/soilnet/rayjob-templates/nightly.yaml" in pod["containers"][0]["command"]
    (role,) = by_kind(docs, "Role")
    assert role["rules"] == [{"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get"]}]
    (binding,) = by_kind(docs, "RoleBinding")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert by_kind(docs, "RayCronJob") == []


def test_raycronjob_mode_replaces_the_cronjob():
    docs = render(
        {
            "nightly": {"enabled": True, "mode": "raycronjob", "job": "evaluate"},
            "jobs": {"evaluate": {"config": {"x": 1}}},
        }
    )
    assert by_kind(docs, "CronJob") == [] and by_kind(docs, "Role") == []
    (cron,) = by_kind(docs, "RayCronJob")
    validate_ray(cron)
    assert cron["spec"]["jobTemplate"]["entrypoint"].startswith("python -m jobs.evaluate --config")
    with pytest.raises(helm.HelmRenderError, match=r"nightly\.job"):
        render({"nightly": {"enabled": True, "job": "nosuchjob"}})


def test_jobs_read_their_config_from_the_configmap():
    docs = render(
        {
            "jobs": {
                "finetune": {
                    "run": True,
                    "config": {"data": {"root": "s3://soilnet/eu"}},
                    "args": ["--set", "log_level=DEBUG"],
                }
            }
        }
    )
    (rayjob,) = by_kind(docs, "RayJob")
    validate_ray(rayjob)
    assert rayjob["spec"]["entrypoint"] == (
        "python -m jobs.finetune --config /etc/soilnet/jobs/finetune.yaml --set log_level=DEBUG"
    )
    assert rayjob["spec"]["clusterSelector"] == {"ray.io/cluster": "demo-soilnet-ray"}
    (configs,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "demo-soilnet-job-configs"]
    assert yaml.safe_load(configs["data"]["finetune.yaml"]) == {"data": {"root": "s3://soilnet/eu"}}
    (cluster,) = by_kind(docs, "RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    assert {"name": "job-configs", "configMap": {"name": "demo-soilnet-job-configs"}} in head["volumes"]


def test_dedicated_mode_gives_each_rayjob_its_own_cluster():
    docs = render({"rayJob": {"clusterMode": "dedicated"}, "jobs": {"map": {"run": True, "config": {"map": {}}}}})
    assert by_kind(docs, "RayCluster") == []
    (rayjob,) = by_kind(docs, "RayJob")
    validate_ray(rayjob)
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True
    assert rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
