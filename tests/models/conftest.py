"""Single-threaded, seeded torch for every test here (recipes and batches come from tests/conftest.py)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
