"""Ingest test fixtures: the input generators of ``fixtures.py`` and input roots on disk and on S3."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_generators() -> ModuleType:
    name = "soilnet_tests_ingest_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fixtures.py"))
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


@pytest.fixture(scope="session")
def gen() -> ModuleType:
    """The input generators (GeoTIFF, NetCDF, CSV writers) of ``fixtures.py``."""
    return _load_generators()


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh root URL for inputs and cubes: a local folder, then a bucket on the moto endpoint."""
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("s3_bucket")
