"""Session fixtures that start the real parts on loopback: an S3 endpoint (moto) and local Ray."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.multinode"]  # multinode_cluster: a head and two worker nodes (C4)

os.environ.setdefault("SOILNET_PROGRESS", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

FAKE_KEY_ID = "soilnet-test-key-id"
FAKE_SECRET = "soilnet-test-secret-value"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint (moto's server) on 127.0.0.1; credentials and endpoint in the environment."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {
        k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
    }
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=FAKE_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_REGION="us-east-1",
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the test S3 endpoint; returns ``s3://<bucket>``."""
    import boto3

    name = f"soilnet-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def _ray_local_session(s3_endpoint: str) -> Iterator[None]:
    """Shuts down, at the end of the session, the local Ray instance `ray_local` started."""
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def ray_local(_ray_local_session: None) -> None:
    """A local Ray instance sized for this 2-core machine (SETUP.md), started on first use and kept.

    A ``multinode`` test connects this process to its own cluster instead; the next test that asks for
    local Ray starts it again. Depends on the S3 endpoint so that Ray's worker processes inherit its environment.
    """
    import ray

    from tests.fixtures.local_ray import start_local_ray

    if not ray.is_initialized():
        start_local_ray()


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory):
    """A small generated demo region (6 x 6 km at 30 m, 200 points, 128 px shards) on local disk."""
    from soilnet.data.demo_region import DemoConfig, generate_demo_region
    from soilnet.data.raster_cube import RasterLayout

    root = tmp_path_factory.mktemp("tiny_demo")
    cfg = DemoConfig(width_km=6, height_km=6, n_points=200, seed=3)
    return generate_demo_region(cfg, str(root), RasterLayout(inner_chunk=32, shard=128))


@pytest.fixture(scope="session")
def tiny_bundle_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny two-fold ensemble of `tests.fixtures.tiny_models` saved as a model bundle folder."""
    from tests.fixtures.tiny_models import save_tiny_bundle

    return save_tiny_bundle(str(tmp_path_factory.mktemp("bundle") / "tiny"))


RECIPES = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "recipes"


@pytest.fixture
def recipe():
    """Load a model recipe by name from jobs/configs/recipes."""
    from soilnet.recipes.recipe import load_recipe

    return lambda name: load_recipe(RECIPES / f"{name}.yaml")


@pytest.fixture
def sample_batch():
    """Random image (B, C, P, P) and climate (B, T, V) float32 batches of a recipe's shapes."""
    import torch

    def make(recipe, batch: int = 2):
        d = recipe.data
        image = torch.rand(batch, d.n_bands, d.patch_px, d.patch_px)
        return image, torch.randn(batch, d.n_months, d.n_climate_vars)

    return make


TINY_RECIPE = """
name: tiny
data: {n_bands: 14, patch_px: 16, n_climate_vars: 14, n_months: 6}
model:
  image: {arch: vit, timm_name: vit_tiny_patch16_224, img_size: 16, patch_size: 8, embed_dim: 16, depth: 1,
          num_heads: 2}
  climate: {kind: gru, hidden_size: 8, num_layers: 1, pooling: mean}
  branch_dim: 8
  head: {hidden: [8]}
ssl: {objective: cross_modal, projection_dim: 8, projection_hidden: [8]}
"""


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> str:
    """Path of a tiny ViT + GRU recipe with a cross-modal SSL section (training and tracking tests)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return str(path)
