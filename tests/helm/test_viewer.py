"""The chart's optional map viewer: off by default; when on, a Deployment + ClusterIP Service that validate,
run `soilnet serve` on the configured map with the chart's security settings and credentials from Secrets."""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.helm.test_chart import CHART, K8S_VERSION, by_kind, production_values, render, validate_core

VIEWER = {"viewer": {"enabled": True, "map": "s3://soilnet/maps/europe", "points": "s3://soilnet/points.parquet"}}


def viewer_objects(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "viewer"]


def test_viewer_is_off_by_default() -> None:
    assert viewer_objects(render()) == []
    assert viewer_objects(render(production_values())) == []


@pytest.mark.parametrize("base", [{}, "production"], ids=["default", "production"])
def test_enabled_viewer_renders_valid_objects_with_the_chart_security(base) -> None:
    values = {**(production_values() if base == "production" else {}), **VIEWER}
    docs = render(values)
    objects = viewer_objects(docs)
    assert sorted(d["kind"] for d in objects) == ["Deployment", "Service", "ServiceAccount"]
    for obj in objects:
        validate_core(obj)
    (deployment,) = by_kind(objects, "Deployment")
    (service,) = by_kind(objects, "Service")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["command"] == [
        "soilnet", "serve", "--map", "s3://soilnet/maps/europe", "--points", "s3://soilnet/points.parquet",
        "--host", "0.0.0.0", "--port", "8080",
    ]  # fmt: skip
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "soilnet-s3"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8080 and service["spec"]["ports"][0]["targetPort"] == "http"
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == []


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"viewer": {"enabled": True}}, "/viewer/map"),
        ({"viewer": {"port": 0}}, "/viewer/port"),
        ({"viewer": {"map": "s3://a b"}}, "/viewer/map"),
        ({"viewer": {"typo": 1}}, "/viewer"),
    ],
)
def test_viewer_values_are_checked_by_the_schema(values, where) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(values)
    assert where in str(err.value)
