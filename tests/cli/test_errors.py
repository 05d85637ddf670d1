"""Every failed lookup is one line and exit status 2, naming what was asked and what exists; no traceback.

Each subcommand gets a wrong argument of each kind it takes: run id, model name, alias, bundle
path, kubeconfig (file, folder, context), cluster address, file versus folder. ``SOILNET_DEBUG=1``
``soilnet --debug`` adds the traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from soilnet.cli.app import app
from tests.conftest import free_port
from tests.fixtures.registry import register_tiny_champion

MAP_CONFIG = str(Path(__file__).resolve().parents[2] / "jobs" / "configs" / "map.yaml")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_demo) -> Path:
    """The tiny demo region with a champion in its SQLite registry (soilnet-soc_g_kg)."""
    import os

    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    root = Path(tiny_demo.root)
    register_tiny_champion(root)
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved
    return root


def _map_args(root: Path, *overrides: str) -> list[str]:
    sets = [f"raster={root / 'raster.zarr'}", f"climate={root / 'climate.zarr'}", f"out={root / 'runs' / 'map'}"]
    sets += ["write_roots=[]", "region=null", *overrides]
    return ["map", "plan", "-c", MAP_CONFIG, *[a for s in sets for a in ("--set", s)]]


def _kubeconfig(path: Path) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: here\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\n"
    )
    return path


def cases(root: Path, tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, what the one line must say) for every kind of wrong argument."""
    registry = f"tracking.uri=sqlite:///{root / 'mlruns.db'}"
    points = root / "points.parquet"
    return [
        (["promote", "--run-id", "deadbeef", "--set", registry], r"no MLflow run 'deadbeef' in sqlite:.*latest runs: "),
        (_map_args(root, "model.bundle=models:/soilnet@champion"), r"no registered model 'soilnet' .*soilnet-soc_g_kg"),
        (_map_args(root, "map.model.bundle=models:/soilnet-soc_g_kg@gold"), r"has no alias 'gold'; aliases: champion"),
        (_map_args(root, f"model.bundle={tmp / 'nowhere'}"), r"nowhere"),
        (_map_args(root, f"model.bundle={points}"), r"points.parquet"),
        (["k8s", "list", "--kubeconfig", str(tmp / "missing.yaml")], r"kubeconfig .*missing.yaml: no such file"),
        (["k8s", "status", "job-x", "--kubeconfig", str(tmp)], r"kubeconfig .*: a folder"),
        (
            ["k8s", "logs", "job-x", "--kubeconfig", str(_kubeconfig(tmp / "kube.yaml")), "--context", "there"],
            r"has no context 'there'; contexts: here",
        ),
        (["submit", "map", "-c", MAP_CONFIG, "--no-follow", "--address", f"http://127.0.0.1:{free_port()}"], r"127"),
        (["validate", "points", str(root / "raster.zarr")], r"raster.zarr is a folder, not a file"),
        (["validate", "raster", str(points)], r"points.parquet"),
        (["validate", "climate", str(tmp / "no.zarr")], r"no.zarr"),
        (["models", "describe", str(tmp / "no-recipe.yaml")], r"no-recipe.yaml"),
        (["config", "-c", str(tmp / "no-config.yaml")], r"no-config.yaml"),
        (["tracking", "flush", str(tmp / "no-spool")], r"no-spool"),
    ]


def test_every_failed_lookup_is_one_line_with_exit_status_2(workspace, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("SOILNET_DEBUG", raising=False)
    runner = CliRunner()
    failures = []
    for args, said in cases(workspace, tmp_path):
        result = runner.invoke(app, args)
        output = result.output
        lines = [line for line in output.splitlines() if line.startswith("error:")]
        ok = result.exit_code == 2 and "Traceback" not in output and len(lines) == 1
        if not ok or not __import__("re").search(said, lines[0]):
            failures.append(f"soilnet {' '.join(args[:3])} ...: exit {result.exit_code}, {output[-400:]!r}")
    assert not failures, "\n".join(failures)


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SOILNET_DEBUG", "0")  # restored after the test: --debug sets it
    result = CliRunner().invoke(app, ["--debug", "models", "describe", str(tmp_path / "no-recipe.yaml")])
    assert result.exit_code == 2 and "Traceback" in result.output
