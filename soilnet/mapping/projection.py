"""Projecting a map run's wall time and cost on N GPUs from measured rates, saying which figures are assumed.

`benchmarks/scale.py` measures, on the machine it runs on, the rates a map run is made of and saves
them as `MeasuredRates` JSON (``benchmarks/results/scale_rates.json``): input bytes read and decoded
per reader CPU-second, output pixels written per writer second, the fixed cost per tile (selection,
marker, scheduling) and the CPU model rate. The GPU rate is the one assumed figure until a GPU run
measures it: counted FLOPs per pixel (`MapPlan.flops_per_pixel`) at ``gpu_peak_fraction`` of
``gpu_peak_tflops``. Stages stream concurrently, so the wall time is the slowest stage plus the tile
overheads; each GPU node brings ``cpus_per_gpu`` reader cores and one writer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pydantic import Field

from soilnet import storage
from soilnet.configbase import StrictModel
from soilnet.mapping.plan import MapPlan


class MeasuredRates(StrictModel):
    """Rates measured by `benchmarks/scale.py` on one machine."""

    source: str = Field(..., description="What measured them: benchmark, date, host, region size.")
    read_decode_bytes_per_core_s: float = Field(..., gt=0, description="Decoded input bytes per reader CPU-second.")
    write_px_per_s: float = Field(..., gt=0, description="Output pixels (all layers) written per writer second.")
    tile_overhead_s: float = Field(..., ge=0, description="Seconds per tile besides read, predict and write.")
    cpu_predict_px_per_core_s: float = Field(..., gt=0, description="Output pixels predicted per CPU-second.")
    gpu_px_per_s: float | None = Field(None, gt=0, description="Output pixels per GPU-second, once a GPU run has one.")


def load_rates(url: str | os.PathLike[str]) -> MeasuredRates:
    """Read measured rates; a missing file names the benchmark that writes it."""
    where = os.fspath(url)
    try:
        with storage.open_file(where, "r") as f:
            return MeasuredRates.model_validate(json.load(f))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{where}: no measured rates (run `python benchmarks/scale.py` to measure)") from exc


def save_rates(rates: MeasuredRates, url: str | os.PathLike[str]) -> None:
    """Write measured rates as JSON."""
    with storage.open_file(os.fspath(url), "w") as f:
        f.write(rates.model_dump_json(indent=1))


@dataclass(frozen=True)
class Projection:
    """A projected run: hours per stage, wall hours and cost on ``gpus`` GPUs."""

    gpus: int
    cores: int
    read_h: float
    predict_h: float
    write_h: float
    overhead_h: float
    gpu_measured: bool
    gpu_px_per_s: float
    cost_usd: float

    @property
    def wall_h(self) -> float:
        """Slowest stage plus the tile overheads."""
        return max(self.read_h, self.predict_h, self.write_h) + self.overhead_h

    @property
    def bound(self) -> str:
        """The stage that sets the wall time."""
        return max(("read", self.read_h), ("predict", self.predict_h), ("write", self.write_h), key=lambda s: s[1])[0]


def project(
    plan: MapPlan,
    rates: MeasuredRates,
    gpus: int,
    cpus_per_gpu: int,
    gpu_peak_tflops: float,
    gpu_peak_fraction: float,
    gpu_hour_usd: float,
) -> Projection:
    """Hours and cost of mapping ``plan`` on ``gpus`` GPU nodes."""
    cores = gpus * cpus_per_gpu
    assumed = gpu_peak_tflops * 1e12 * gpu_peak_fraction / plan.flops_per_pixel
    gpu_rate = rates.gpu_px_per_s or assumed
    read_h = plan.input_bytes / (rates.read_decode_bytes_per_core_s * cores) / 3600
    predict_h = plan.output_px / (gpu_rate * gpus) / 3600
    write_h = plan.output_px / (rates.write_px_per_s * gpus) / 3600
    overhead_h = len(plan.tiles) * rates.tile_overhead_s / gpus / 3600
    wall = max(read_h, predict_h, write_h) + overhead_h
    return Projection(
        gpus,
        cores,
        read_h,
        predict_h,
        write_h,
        overhead_h,
        rates.gpu_px_per_s is not None,
        gpu_rate,
        wall * gpus * gpu_hour_usd,
    )


def projection_facts(p: Projection, rates: MeasuredRates, gpu_peak_tflops: float, fraction: float) -> dict[str, str]:
    """The projection as labelled lines, each figure marked measured or assumed."""
    gpu = (
        f"measured {p.gpu_px_per_s:,.0f} px/s per GPU"
        if p.gpu_measured
        else f"ASSUMED {p.gpu_px_per_s:,.0f} px/s per GPU (counted FLOPs at {fraction:.0%} of {gpu_peak_tflops:g} "
        "TFLOP/s peak)"
    )
    return {
        "rates from": rates.source,
        "read + decode": f"measured {rates.read_decode_bytes_per_core_s / 1e6:,.1f} MB/s per core -> "
        f"{p.read_h:.3f} h on {p.cores} cores",
        "predict": f"{gpu} -> {p.predict_h:.3f} h",
        "write": f"measured {rates.write_px_per_s:,.0f} px/s per writer -> {p.write_h:.3f} h",
        "tile overheads": f"measured {rates.tile_overhead_s * 1e3:.1f} ms per tile -> {p.overhead_h:.3f} h",
        f"wall time on {p.gpus} GPU(s)": f"{p.wall_h:.3f} h ({p.bound}-bound)",
        "cost": f"${p.cost_usd:,.2f} (ASSUMED GPU node-hour price)",
    }
