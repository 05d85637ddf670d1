"""Static checks of infra/: the Dockerfile and the cluster manifests."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def instructions(path: Path = INFRA / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_base_image_is_a_build_arg_with_a_cpu_default():
    steps = instructions()
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE_IMAGE=python:3.11")
    assert ("FROM", "${BASE_IMAGE}") in steps


def test_project_is_installed_with_the_constraints_file():
    steps = instructions()
    copies = " ".join(arg for op, arg in steps if op == "COPY")
    assert "constraints.txt" in copies
    installs = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    assert len(installs) == 1 and re.search(r"pip install -c constraints\.txt \.(\s|$)", installs[0])
    for source in re.findall(r"COPY (.+?) \./?\S*$", "\n".join(f"COPY {a}" for op, a in steps if op == "COPY"), re.M):
        for name in source.split():
            assert (ROOT / name).exists(), f"Dockerfile copies {name}, which is not in the repository"


def test_image_runs_as_a_non_root_user():
    steps = instructions()
    users = [(i, arg) for i, (op, arg) in enumerate(steps) if op == "USER"]
    assert users, "the Dockerfile sets no USER"
    last_index, user = users[-1]
    assert user.split(":")[0] not in {"root", "0"}
    args = dict(arg.split("=", 1) for op, arg in steps if op == "ARG" and "=" in arg)
    assert args.get(user.split(":")[0].strip("${}"), user) not in {"root", "0"}
    last_run = max(i for i, (op, _) in enumerate(steps) if op == "RUN")
    assert last_index > last_run, "USER must come after the last RUN"


def test_no_credentials_are_baked_in():
    secretish = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", re.I)
    for op, arg in instructions():
        if op in {"ARG", "ENV"}:
            assert not secretish.search(arg.split("=", 1)[0]), f"{op} {arg} looks like a credential"
        if op in {"COPY", "ADD"}:
            assert not re.search(r"(\.env|\.aws|\.kube|credentials|id_rsa)", arg), f"{op} {arg}"
    text = (INFRA / "Dockerfile").read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)


def test_static_checks_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nENV AWS_SECRET_ACCESS_KEY=abc\nRUN pip install .\n")
    steps = instructions(bad)
    assert not [op for op, _ in steps if op == "USER"]
    assert any(op == "ENV" and "SECRET" in arg for op, arg in steps)


def test_namespace_manifest_validates():
    namespace = yaml.safe_load((INFRA / "namespace.yaml").read_text())
    kubernetes_validate.validate(namespace, "1.31.0", strict=True)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"


def test_kuberay_operator_values_name_the_feature_gates():
    values = yaml.safe_load((INFRA / "kuberay-operator-values.yaml").read_text())
    gates = {g["name"]: g["enabled"] for g in values["featureGates"]}
    assert gates["RayCronJob"] is False
    assert "soilnet" in values["watchNamespace"]


@pytest.mark.parametrize("name", ["Dockerfile", "namespace.yaml", "kuberay-operator-values.yaml"])
def test_readme_walks_through_every_file(name):
    assert name in (INFRA / "README.md").read_text()
