"""`soilnet k8s` against kmock's in-memory Kubernetes API, with RayJob templates rendered by the chart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kmock
import pytest
import yaml
from kubernetes import client as k8s
from typer.testing import CliRunner

from soilnet.cli.submit import app
from soilnet.submission import kuberay
from soilnet.submission.launch import CONFIG_ENV_VAR

CHART = Path(__file__).resolve().parents[2] / "helm" / "soilnet"
NS = "soil"
TEMPLATES = "demo-soilnet-rayjob-templates"


class Cluster:
    """A KubernetesEmulator served on 127.0.0.1 from its own event loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "kmock did not start"

    async def _serve(self) -> None:
        self.stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            emulator.resources["ray.io/v1/rayjobs"] = {}
            emulator.resources["v1/pods"] = {}
            emulator.resources["v1/configmaps"] = {}
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self.ready.set()
            await self.stop.wait()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)

    def write_kubeconfig(self, path: Path, namespace: str | None = None) -> Path:
        """A kubeconfig at `path` whose current context is this cluster (and `namespace`, if given)."""
        context = {"cluster": "kmock", "user": "tester"} | ({"namespace": namespace} if namespace else {})
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {}}],
                    "contexts": [{"name": "kmock", "context": context}],
                    "current-context": "kmock",
                }
            )
        )
        return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, k8s.ApiClient, Path]]:
    c = Cluster()
    kubeconfig = c.write_kubeconfig(tmp_path / "kubeconfig", NS)
    api = kuberay.api_client(str(kubeconfig))
    yield c, api, kubeconfig
    api.close()
    c.close()


@pytest.fixture
def templates() -> dict[str, str]:
    """The chart's RayJob templates ConfigMap data, rendered for release 'demo' in namespace 'soil'."""
    with helm.Chart.load(CHART) as chart:
        text = chart.render(None, name="demo", namespace=NS)["soilnet/templates/rayjob-templates.yaml"]
    return yaml.safe_load(text)["data"]


def install_templates(api: k8s.ApiClient, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": TEMPLATES, "namespace": NS}, "data": data}
    k8s.CoreV1Api(api).create_namespaced_config_map(NS, body)


def stored_rayjobs(api: k8s.ApiClient) -> list[dict[str, Any]]:
    listing = k8s.CustomObjectsApi(api).list_namespaced_custom_object("ray.io", "v1", NS, "rayjobs")
    return listing["items"]


def set_status(api: k8s.ApiClient, name: str, deployment: str, job: str) -> None:
    status = {"status": {"jobDeploymentStatus": deployment, "jobStatus": job, "message": f"{deployment} {job}"}}
    k8s.CustomObjectsApi(api).patch_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", name, status)


def cli(kubeconfig: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--kubeconfig", str(kubeconfig)])


def test_run_creates_the_chart_rayjob_under_a_new_name(cluster, templates):
    _, api, kubeconfig = cluster
    install_templates(api, templates)
    result = cli(kubeconfig, "k8s", "run", "pretrain", "-n", NS, "--templates-configmap", TEMPLATES)
    assert result.exit_code == 0, result.output
    (created,) = stored_rayjobs(api)
    name = created["metadata"]["name"]
    # the CLI prints the name on a line of its own (the in-process API server may log to stdout around it)
    assert name in [line.strip() for line in result.stdout.splitlines()]
    template = yaml.safe_load(templates["pretrain.yaml"])
    assert name != template["metadata"]["name"]
    assert name.startswith("demo-soilnet-pretrain-") and len(name) <= kuberay.MAX_NAME
    assert created["spec"] == template["spec"]
    assert created["metadata"]["labels"]["soilnet.io/job"] == "pretrain"
    assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "soilnet-cli"


def test_run_with_a_config_sends_it_in_the_runtime_env(cluster, templates, tmp_path):
    _, api, kubeconfig = cluster
    template_file = tmp_path / "map.yaml"
    template_file.write_text(templates["map.yaml"])
    config = tmp_path / "europe.yaml"
    config.write_text("data:\n  root: s3://soilnet/europe\n")
    result = cli(
        kubeconfig,
        "k8s",
        "run",
        "map",
        "-n",
        NS,
        "--template",
        str(template_file),
        "-c",
        str(config),
        "--arg",
        "--set",
        "--arg",
        "log_level=DEBUG",
    )
    assert result.exit_code == 0, result.output
    (created,) = stored_rayjobs(api)
    assert created["spec"]["entrypoint"] == "python -m soilnet.submission.launch map --set log_level=DEBUG"
    runtime_env = yaml.safe_load(created["spec"]["runtimeEnvYAML"])
    assert runtime_env == {"env_vars": {CONFIG_ENV_VAR: config.read_text()}}


def test_run_names_the_known_jobs_when_the_template_is_missing(cluster, templates):
    _, api, kubeconfig = cluster
    install_templates(api, templates)
    result = cli(kubeconfig, "k8s", "run", "nosuchjob", "-n", NS, "--templates-configmap", TEMPLATES)
    assert result.exit_code == 2
    assert "no template for job 'nosuchjob'" in result.output and "pretrain" in result.output
    result = cli(kubeconfig, "k8s", "run", "map", "-n", NS, "--templates-configmap", "absent")
    assert result.exit_code == 2 and "cannot read ConfigMap soil/absent" in result.output
    assert stored_rayjobs(api) == []


def test_a_manifest_that_is_not_a_rayjob_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: batch/v1\nkind: Job\nspec: {}\n")
    with pytest.raises(kuberay.RayJobError, match=r"is not a ray\.io/v1 RayJob"):
        kuberay.load_template_file(bad)


@pytest.mark.parametrize(
    ("deployment", "job", "code"),
    [("Complete", "SUCCEEDED", 0), ("Failed", "FAILED", 1), ("Complete", "STOPPED", 3), ("Running", "RUNNING", 4)],
)
def test_status_reports_and_exits_with_the_job_state(cluster, templates, deployment, job, code):
    _, api, kubeconfig = cluster
    name = kuberay.create_rayjob(
        k8s.CustomObjectsApi(api), kuberay.new_rayjob(yaml.safe_load(templates["map.yaml"]), NS)
    )
    set_status(api, name, deployment, job)
    result = cli(kubeconfig, "k8s", "status", name, "-n", NS)
    assert result.exit_code == code, result.output
    assert f"deployment_status: {deployment}" in result.stdout and f"job_status: {job}" in result.stdout


def test_a_new_rayjob_without_status_is_pending_not_finished():
    state = kuberay.RayJobState.from_object({"metadata": {"name": "x", "labels": {"soilnet.io/job": "map"}}})
    assert (state.deployment_status, state.job_status, state.finished) == ("New", "PENDING", False)


def test_wait_follows_the_rayjob_to_its_end(cluster, templates):
    _, api, _ = cluster
    custom = k8s.CustomObjectsApi(api)
    name = kuberay.create_rayjob(custom, kuberay.new_rayjob(yaml.safe_load(templates["map.yaml"]), NS))

    def operator() -> None:
        time.sleep(0.2)
        set_status(api, name, "Running", "RUNNING")
        time.sleep(0.2)
        set_status(api, name, "Failed", "FAILED")

    worker = threading.Thread(target=operator)
    worker.start()
    seen: list[tuple[str, str]] = []
    state = kuberay.wait_rayjob(custom, NS, name, 0.02, lambda s: seen.append((s.deployment_status, s.job_status)))
    worker.join()
    assert seen == [("New", "PENDING"), ("Running", "RUNNING"), ("Failed", "FAILED")]
    assert state.exit_code == 1


def test_list_and_logs(cluster, templates):
    c, api, kubeconfig = cluster
    custom = k8s.CustomObjectsApi(api)
    names = [
        kuberay.create_rayjob(custom, kuberay.new_rayjob(yaml.safe_load(templates[f"{j}.yaml"]), NS))
        for j in ("map", "evaluate")
    ]
    result = cli(kubeconfig, "k8s", "list", "-n", NS)
    assert result.exit_code == 0, result.output
    assert all(n in result.stdout for n in names)

    result = cli(kubeconfig, "k8s", "logs", names[0], "-n", NS)
    assert result.exit_code == 2 and "has no submitter pod" in result.output
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{names[0]}-abcde", "namespace": NS, "labels": {"job-name": names[0]}},
        "spec": {"containers": [{"name": "ray-job-submitter", "image": "soilnet"}]},
    }
    k8s.CoreV1Api(api).create_namespaced_pod(NS, pod)
    (
        c.emulator[f"get /api/v1/namespaces/{NS}/pods/{names[0]}-abcde/log"]
        << kmock.headers({"Content-Type": "text/plain"})
        << b"Job 'raysubmit_1' succeeded\n"
    )
    result = cli(kubeconfig, "k8s", "logs", names[0], "-n", NS)
    assert result.exit_code == 0, result.output
    assert "Job 'raysubmit_1' succeeded" in result.stdout
