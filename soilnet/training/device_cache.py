"""The labelled-sample cache in device memory: batches gathered, decoded and normalised on the GPU.

With ``train.cache_device: cuda`` each worker copies the raw cache (int16 images, float32 series,
a few MB to a few GB: Europe's ~22,000 LUCAS points at 14 x 64 x 64 px are 2.5 GB) to its GPU
once; every later batch is an index into it, decoded (``raw * scale + offset``), normalised and
masked there, so epochs 2+ cost no storage bytes, no host copies and almost no CPU. The same class
runs on the CPU (``cpu``), where it gives the same numbers as the NumPy path
(`soilnet.data.normalisation.normalise_batch` of `soilnet.training.batches.cache_rows`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from soilnet.data.normalisation import NormStats

CacheDevice = Literal["cpu", "cuda"]


class NoFreeGPUError(RuntimeError):
    """``train.cache_device: cuda`` on a worker without a usable GPU (or without room for the cache)."""


def resolve_device(name: CacheDevice, nbytes: int = 0) -> torch.device:
    """The torch device of ``train.cache_device``; a clear error when no GPU is free for ``nbytes`` of cache."""
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NoFreeGPUError(
            "train.cache_device is 'cuda' but this worker sees no GPU (torch.cuda.is_available() is False): "
            "run with train.use_gpu=true on GPU nodes, or set train.cache_device=cpu"
        )
    device = torch.device("cuda", torch.cuda.current_device())
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > free:
        raise NoFreeGPUError(
            f"train.cache_device is 'cuda' but {device} has {free / 2**30:.1f} GiB free for a "
            f"{nbytes / 2**30:.1f} GiB sample cache: set train.cache_device=cpu or free the GPU"
        )
    return device


class DeviceCache:
    """A raw sample cache (`soilnet.training.samples.CachedSource`'s dict) held on one device."""

    def __init__(self, cache: dict[str, Any], stats: NormStats, mask_channel: bool, device: CacheDevice) -> None:
        arrays = {k: np.ascontiguousarray(cache[k]) for k in ("image", "climate", "target", "x", "y")}
        self.device = resolve_device(device, sum(a.nbytes for a in arrays.values()))
        self.data = {k: torch.from_numpy(a).to(self.device) for k, a in arrays.items()}
        if self.data["image"].shape[1] != len(stats.bands):
            raise ValueError(
                f"cached images have {self.data['image'].shape[1]} bands, the statistics {len(stats.bands)}"
            )
        per_band = lambda values: torch.tensor(np.asarray(values, np.float32), device=self.device)[None, :, None, None]  # noqa: E731
        self.scale, self.offset = per_band(cache["scale"]), per_band(cache["offset"])
        self.center, self.spread = per_band(stats.image_center), per_band(stats.image_scale)
        self.climate_mean = torch.tensor(np.asarray(stats.climate_mean, np.float32), device=self.device)
        self.climate_std = torch.tensor(np.asarray(stats.climate_std, np.float32), device=self.device)
        self.nodata, self.mask_channel = int(cache["nodata"]), mask_channel

    def __len__(self) -> int:
        return int(self.data["image"].shape[0])

    def batch(self, rows: np.ndarray, valid: np.ndarray) -> dict[str, torch.Tensor]:
        """Normalised batch of cache ``rows`` on the device, with the rows' ``valid`` weights."""
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.device)
        raw = self.data["image"].index_select(0, index)
        present = raw != self.nodata
        values = raw.to(torch.float32) * self.scale + self.offset
        image = torch.where(present, (values - self.center) / self.spread, torch.zeros((), device=self.device))
        if self.mask_channel:
            image = torch.cat([image, present.all(dim=1, keepdim=True).to(torch.float32)], dim=1)
        climate = (self.data["climate"].index_select(0, index) - self.climate_mean) / self.climate_std
        out = {"image": image, "climate": climate}
        out.update({k: self.data[k].index_select(0, index) for k in ("target", "x", "y")})
        out["valid"] = torch.from_numpy(np.asarray(valid, dtype=np.float32)).to(self.device)
        return out
