"""Security properties of the rendered chart not covered by tests/helm: defaults as well as production values."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHART_TESTS = Path(__file__).resolve().parents[1] / "helm" / "test_chart.py"


def _chart_helpers() -> ModuleType:
    """The render helpers of ``tests/helm/test_chart.py`` (one way of rendering the chart for all tests)."""
    name = "soilnet_tests_helm_chart"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CHART_TESTS)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


helm = _chart_helpers()
VALUES = {"default": None, "production": helm.production_values()}


def _pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod spec the chart renders, directly or inside RayClusters, RayJob templates and the CronJob."""
    pods: dict[str, dict[str, Any]] = {}
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "Pod":
            pods[name] = d["spec"]
        elif d["kind"] == "Deployment":
            pods[name] = d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            pods[name] = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif d["kind"] in ("RayCluster", "RayCronJob", "RayJob"):
            pods.update({f"{name}#{i}": t["spec"] for i, t in enumerate(helm.pod_templates(d))})
    for job, template in helm.rayjob_templates(docs).items():
        pods.update({f"RayJob template {job}#{i}": t["spec"] for i, t in enumerate(helm.pod_templates(template))})
    return pods


@pytest.fixture(scope="module", params=list(VALUES))
def docs(request) -> list[dict[str, Any]]:
    return helm.render(VALUES[request.param])


def test_every_pod_is_locked_down(docs):
    pods = _pods(docs)
    assert len(pods) >= 7
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"].get("runAsUser", 1000) != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(key), f"{name}: {key}"
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], f"{name}: hostPath volume"
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, f"{name}/{container['name']}"
            assert not ctx.get("privileged"), f"{name}/{container['name']}"
            assert ctx["capabilities"]["drop"] == ["ALL"] and not ctx["capabilities"].get("add"), name


def test_only_the_nightly_pod_gets_a_kubernetes_api_token(docs):
    for name, pod in _pods(docs).items():
        wants_api = name.startswith("CronJob/")
        assert pod.get("automountServiceAccountToken") is wants_api, name


def test_nothing_is_exposed_beyond_the_namespace_by_default(docs):
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"Ingress", "Route", "Gateway", "HTTPRoute"}
    for service in helm.by_kind(docs, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
        assert not service["spec"].get("externalIPs")
    for cluster in helm.by_kind(docs, "RayCluster"):
        head_service = cluster["spec"]["headGroupSpec"].get("serviceType", "ClusterIP")
        assert head_service == "ClusterIP"


def test_rbac_is_namespaced_and_without_wildcards(docs):
    assert not helm.by_kind(docs, "ClusterRole") and not helm.by_kind(docs, "ClusterRoleBinding")
    for role in helm.by_kind(docs, "Role"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"{role['metadata']['name']}: wildcard in {key}"
            assert not set(rule["verbs"]) & {"delete", "deletecollection", "escalate", "bind", "impersonate"}
