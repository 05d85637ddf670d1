"""Same seed, same numbers: the torch settings every training worker and map predictor runs under.

On CPU a run repeats to the bit when each process uses a fixed number of intra-op threads (a float
reduction split over another number of threads sums in another order) and the data arrive in a
fixed order (`soilnet.training.trainer.ordered_ingest`). On CUDA, deterministic kernels and
cuBLAS's fixed workspace make one GPU repeat itself; see the README for what NCCL allows.
"""

from __future__ import annotations

import os

#: cuBLAS needs a fixed workspace to pick the same reduction order every time (set before CUDA starts).
CUBLAS_WORKSPACE = ":4096:8"


def deterministic_torch(threads: int) -> None:
    """Use `threads` intra-op threads, deterministic kernels (warn where none exists) and no cuDNN autotuning."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
