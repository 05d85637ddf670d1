"""What the docs tell a user to run, runs: every command of README.md, infra/README.md, the header comments
of jobs/configs/*.yaml and the hints `soilnet demo` prints.

Commands in code blocks run as written, in a small demo workspace built once by the first whole-flow
command (`soilnet demo`, with ``$SOILNET_CONFIG`` pointing at a tiny copy of jobs/configs/demo.yaml):
``soilnet ...`` in-process, ``python -m jobs...`` as processes, ``make ...`` as ``make -n``, and
``soilnet k8s ...`` against the in-memory Kubernetes API with the chart's templates. Commands quoted
in prose must name a real subcommand. Every file a command names must exist. Placeholders such as
``<rayjob>`` are filled with real values; what cannot run here is on `SKIP`, printed with its reason.
A command added to the docs is picked up without touching this file.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soilnet.cli.app import app

REPO = Path(__file__).resolve().parents[1]
#: The namespace the docs install the chart in.
NS = "soilnet"
DOCS = ("README.md", "infra/README.md")
COMMAND = re.compile(r"^((soilnet|make)( [^ ]|$)|python -m jobs\.)")
FENCE = re.compile(r"^```")
SPAN = re.compile(r"`([^`]+)`")

#: Commands that cannot run here, by prefix, and why (printed by the test).
SKIP = {
    # A bucket of the reader's on a real S3 store: the same command with --out demo runs below.
    "soilnet demo-data --out s3://my-bucket": "the reader's own S3 bucket",
    # Ray Jobs API of a cluster behind `kubectl port-forward`: tests/submission/test_jobs_api.py runs
    # `soilnet submit` against a loopback Ray head.
    "soilnet submit": "needs the cluster's Ray head (port-forwarded); loopback head in tests/submission",
    # Long-running flows on the Europe cubes in s3://soilnet (cluster workspaces).
    "python -m jobs.<pretrain": "cluster workspace s3://soilnet/europe",
    # The Europe map and its releases in s3://soilnet; tests/nightly runs them on a generated region.
    "soilnet nightly": "the Europe cubes and releases in s3://soilnet; tests/nightly runs them on generated ones",
    # Examples on the reader's own spectral files (lab_mir.csv, neospectra.csv); tests/spectra runs them on
    # generated spectra.
    "soilnet spectra": "the reader's spectral library files; tests/spectra runs the commands on generated ones",
    # A web server that runs until stopped (the hint `soilnet demo` prints last); tests/serve opens its pages.
    "soilnet serve": "a web server that runs until stopped; tests/serve requests its pages",
    # A design's arms x seeds (tens of minutes even --quick on a 2-core machine): tests/experiments runs a design
    # end to end on the tiny region, tests/cli/test_experiment.py the command; the Europe runs need s3://soilnet.
    "soilnet experiment": "every arm of a design over its seeds; tests/experiments runs one on the tiny region",
    "python -m jobs.experiment": "cluster workspace s3://soilnet/europe",
    # Regenerates the full 30 km region (minutes); `soilnet demo` above generated the (tiny) region.
    "soilnet demo-data --out demo --size-km 30": "the full-size region takes minutes; soilnet demo built the tiny one",
}
TINY = {
    "demo": {"width_km": 6, "height_km": 6, "n_points": 200, "seed": 3},
    "raster_layout": {"inner_chunk": 32, "shard": 128},
    "pretrain": {"epochs": 1, "stream": {"n_unlabelled": 64, "batch_size": 16, "buffer_px": 2}},
    "finetune": {"epochs": 1, "folds": {"k": 3}, "stream": {"batch_size": 16, "buffer_px": 2}},
    "evaluate": {"baselines": {"n_jobs": 1}, "plots": False},
}


@dataclass(frozen=True)
class Documented:
    """A command and where the docs give it; ``quoted`` if it only appears inside prose."""

    source: str
    command: str
    quoted: bool


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).strip()


def code_block_commands(text: str) -> Iterator[str]:
    """Commands in fenced code blocks (continuation lines joined, trailing comments dropped)."""
    inside, pending = False, ""
    for raw in text.splitlines():
        if FENCE.match(raw.strip()):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        line = pending + _strip_comment(raw)
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if COMMAND.match(line):
            yield line


def quoted_commands(text: str) -> Iterator[str]:
    """Commands in inline code spans of prose (outside code blocks)."""
    inside = False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
        elif not inside:
            yield from (s.strip() for s in SPAN.findall(line) if COMMAND.match(s.strip()))


def header_comment(path: Path) -> str:
    """The leading comment lines of a YAML file."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    return "\n".join(lines)


def documented() -> list[Documented]:
    """Every command of the docs and config headers, code blocks first, each once."""
    found: dict[str, Documented] = {}
    for doc in DOCS:
        text = (REPO / doc).read_text()
        for command in code_block_commands(text):
            found.setdefault(command, Documented(doc, command, False))
        for command in quoted_commands(text):
            found.setdefault(command, Documented(doc, command, True))
    for path in sorted((REPO / "jobs" / "configs").glob("*.yaml")):
        for command in SPAN.findall(header_comment(path)):
            if COMMAND.match(command):
                found.setdefault(command, Documented(str(path.relative_to(REPO)), command, False))
    return list(found.values())


def is_whole_flow(command: str) -> bool:
    """`soilnet demo` (any options) or `python -m jobs.demo`: the flow that builds the workspace."""
    words = shlex.split(command)
    return words[:2] == ["soilnet", "demo"] or words[:3] == ["python", "-m", "jobs.demo"]


def skipped(command: str) -> str | None:
    return next((why for prefix, why in SKIP.items() if command.startswith(prefix)), None)


def named_files(command: str) -> list[str]:
    """Relative paths a command names (config files, docs) that a fresh checkout must hold."""
    words = shlex.split(command)
    return [w for w in words if re.match(r"^(jobs|infra|helm)/[\w./-]+\.(yaml|yml|md|env)$", w)]


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like a checkout (jobs/ with tiny copies of the demo and pretrain configs)."""
    root = tmp_path_factory.mktemp("checkout")
    subprocess.run(["cp", "-r", str(REPO / "jobs"), str(root / "jobs")], check=True)
    for name in ("demo.yaml", "pretrain.yaml"):
        path = root / "jobs" / "configs" / name
        tree = yaml.safe_load(path.read_text())
        tiny = {k: v for k, v in TINY.items() if k in tree or name == "demo.yaml"}
        path.write_text(yaml.safe_dump(_merge(tree, tiny), sort_keys=False))
    return root


class Soilnet:
    """Runs documented commands in the workspace; remembers what the first whole-flow run printed."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.runner, self.demo_output = root, CliRunner(), ""
        monkeypatch.chdir(root)
        monkeypatch.setenv("SOILNET_CONFIG", str(root / "jobs" / "configs" / "demo.yaml"))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run(self, command: str) -> tuple[int, str]:
        """(exit status, output) of a command as written."""
        words = shlex.split(command)
        if words[0] == "make":
            done = subprocess.run(["make", "-n", *words[1:]], cwd=REPO, capture_output=True, text=True)
            return done.returncode, done.stdout + done.stderr
        if words[0] == "python":
            done = subprocess.run([sys.executable, *words[1:]], cwd=self.root, capture_output=True, text=True)
            return done.returncode, done.stdout + done.stderr
        result = self.runner.invoke(app, words[1:])
        return result.exit_code, result.output + (repr(result.exception) if result.exception else "")


def _operate(cluster, stop: threading.Event) -> None:
    """Play the KubeRay operator: finish every new RayJob and give it a submitter pod with a log."""
    import kmock
    from kubernetes import client as k8s

    from soilnet.submission import kuberay

    api = kuberay.api_client(None, None)
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    while not stop.is_set():
        for item in custom.list_namespaced_custom_object("ray.io", "v1", NS, "rayjobs")["items"]:
            name = item["metadata"]["name"]
            if "status" in item:
                continue
            pod = {"metadata": {"name": f"{name}-pod", "labels": {kuberay.SUBMITTER_POD_LABEL: name}}}
            core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", **pod})
            log = cluster.emulator[f"get /api/v1/namespaces/{NS}/pods/{name}-pod/log"]
            log << kmock.headers({"Content-Type": "text/plain"}) << b"Job succeeded\n"
            body = {"status": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "message": "done"}}
            custom.patch_namespaced_custom_object("ray.io", "v1", NS, "rayjobs", name, body)
        time.sleep(0.2)


def rayjob_names() -> list[str]:
    """Names of the RayJobs in the chart's namespace, oldest first."""
    from kubernetes import client as k8s

    from soilnet.submission import kuberay

    custom = k8s.CustomObjectsApi(kuberay.api_client(None, None))
    return [i["metadata"]["name"] for i in custom.list_namespaced_custom_object("ray.io", "v1", NS, "rayjobs")["items"]]


@pytest.fixture
def kubernetes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-memory Kubernetes API as the default kubeconfig, holding the chart's RayJob templates."""
    import helm_python as helm
    from kubernetes import client as k8s

    from soilnet.submission import kuberay
    from tests.submission.test_kuberay import Cluster

    cluster = Cluster()
    cluster.emulator.resources["v1/namespaces"] = {}
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with helm.Chart.load(REPO / "helm" / "soilnet") as chart:
        rendered = chart.render(None, name="soilnet", namespace=NS)
    data = yaml.safe_load(rendered["soilnet/templates/rayjob-templates.yaml"])["data"]
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "soilnet-rayjob-templates"}, "data": data}
    api = kuberay.api_client(str(kubeconfig))
    k8s.CoreV1Api(api).create_namespaced_config_map(NS, body)
    stop = threading.Event()
    worker = threading.Thread(target=_operate, args=(cluster, stop), daemon=True)
    worker.start()
    yield
    stop.set()
    worker.join(5)
    api.close()
    cluster.close()


def test_the_documented_commands_name_existing_files():
    missing = [
        (d.source, d.command, f) for d in documented() for f in named_files(d.command) if not (REPO / f).exists()
    ]
    assert not missing, f"documented commands name files that do not exist: {missing}"


def test_quoted_commands_are_real_subcommands():
    runner, wrong = CliRunner(), []
    for d in documented():
        words = shlex.split(d.command)
        if not d.quoted or words[0] != "soilnet":
            continue
        path = [w for w in words[1:3] if re.match(r"^[a-z][a-z0-9-]*$", w)]
        result = runner.invoke(app, [*path, "--help"])
        if result.exit_code != 0:
            wrong.append(f"{d.source}: `{d.command}` ({result.output.strip().splitlines()[-1:]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_every_documented_command_runs(workspace, kubernetes, ray_local, monkeypatch, capsys):
    shell = Soilnet(workspace, monkeypatch)
    runnable = [d for d in documented() if not d.quoted]
    flows = [d for d in runnable if is_whole_flow(d.command)]
    status, shell.demo_output = shell.run("soilnet demo")
    assert status == 0, shell.demo_output[-2000:]
    hints = [Documented("soilnet demo", c, False) for c in quoted_hints(shell.demo_output)]
    values: dict[str, str] = {}
    failures, skips = [], []
    for d in [*runnable, *hints]:
        if d in flows:
            continue
        why = skipped(d.command)
        if why:
            skips.append(f"{d.command}  # {why}")
            continue
        command = fill(d.command, values)
        status, output = shell.run(command)
        if status != 0:
            failures.append(f"{d.source}: `{command}` exited {status}: {output[-1500:]}")
        remember(command, values)
    with capsys.disabled():
        print("\nskipped documented commands:\n  " + "\n  ".join(skips))
    assert not failures, "\n\n".join(failures)
    assert flows, "no whole-flow command (soilnet demo / python -m jobs.demo) found in the docs"


def quoted_hints(output: str) -> list[str]:
    """Commands that `soilnet demo` tells the user to run next (after a colon, or in backticks)."""
    hints = [m.strip() for m in re.findall(r":\s+((?:soilnet|make) [^\n]+)", output)]
    return [*hints, *[s for s in SPAN.findall(output) if COMMAND.match(s)]]


def fill(command: str, values: dict[str, str]) -> str:
    """The command with its placeholders (``<rayjob>``, ``<cv run>``) replaced by values seen so far."""
    for name, value in values.items():
        command = command.replace(f"<{name}>", value)
    assert "<" not in command, f"unfilled placeholder in documented command: {command}"
    return command


def remember(command: str, values: dict[str, str]) -> None:
    """Values later commands' placeholders need: the RayJob that `soilnet k8s run` created."""
    if command.startswith("soilnet k8s run"):
        values["rayjob"] = rayjob_names()[-1]
