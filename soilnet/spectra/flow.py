"""The spectral jobs end to end: evaluate a table (pretraining what is missing), and the demo's spectral stage.

``soilnet spectra evaluate`` needs a VAE (and, for converted spectra, a converter). Given none, it
pretrains one on the table's own spectra, which is label-free (no target value reaches the VAE),
through the same Ray Train job as ``soilnet spectra pretrain``. The comparison is logged to MLflow.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd

from soilnet import storage
from soilnet.data.points import read_points
from soilnet.data.workspace import DataConfig
from soilnet.spectra.config import SpectraConfig
from soilnet.spectra.conversion import run_conversion
from soilnet.spectra.demo import generate_demo_spectra
from soilnet.spectra.evaluate import Samples, SpectraComparison, evaluate_spectra, read_samples
from soilnet.spectra.export import load_model
from soilnet.spectra.fitting import start_run
from soilnet.spectra.ingest import IngestReport, ingest_table, read_table
from soilnet.spectra.library import join_points, read_spectra, write_spectra
from soilnet.spectra.pretrain import run_vae_pretraining
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpectraJob:
    """The config sections a spectral job reads (the root config's ``data``, ``train``, ``tracking``, ``spectra``)."""

    data: DataConfig
    train: TrainConfig
    tracking: TrackingConfig
    spectra: SpectraConfig

    @property
    def runs(self) -> str:
        """Where runs and models go."""
        return self.data.url("runs")


def library_url(job: SpectraJob) -> str:
    """The configured spectral library, default ``<data.root>/spectra``."""
    return job.spectra.library or storage.join(storage.resolve(job.data.root).url, "spectra")


@dataclass
class EvaluateInputs:
    """The tables of an evaluation and the models to use (None: pretrained on the tables' spectra)."""

    mir: Samples
    target: str
    nir: Samples | None = None
    vae: str | None = None
    converter: str | None = None
    group: str | None = None


@dataclass
class EvaluateResult:
    """The comparison and the models it used."""

    comparison: SpectraComparison
    vae: str
    converter: str | None
    run_id: str
    models_trained: list[str] = field(default_factory=list)


def pretrain_missing(inputs: EvaluateInputs, job: SpectraJob) -> list[str]:
    """Pretrain the VAE (and converter) the inputs lack on their own spectra; returns what was trained."""
    trained: list[str] = []
    if inputs.vae is not None and (inputs.nir is None or inputs.converter is not None):
        return trained
    scratch = storage.join(job.runs, "spectra-evaluate-library")
    write_spectra(inputs.mir.spectra, scratch, overwrite=True)
    if inputs.nir is not None:
        write_spectra(inputs.nir.spectra, scratch, overwrite=True)
    if inputs.vae is None:
        inputs.vae = run_vae_pretraining(scratch, job.spectra, job.train, job.tracking, job.data.root, job.runs).url
        trained.append(inputs.vae)
    if inputs.nir is not None and inputs.converter is None:
        inputs.converter = run_conversion(
            scratch, inputs.vae, job.spectra, job.train, job.tracking, job.data.root, job.runs
        ).url
        trained.append(inputs.converter)
    return trained


def run_evaluate(inputs: EvaluateInputs, job: SpectraJob) -> EvaluateResult:
    """Evaluate every spectral model on the inputs; log the comparison to MLflow."""
    trained = pretrain_missing(inputs, job)
    vae, vae_card = load_model(inputs.vae, "vae")
    converter = None
    if inputs.nir is not None:
        module, card = load_model(inputs.converter, "converter")
        converter = (module, card.source)
    comparison = evaluate_spectra(
        inputs.mir, inputs.target, job.spectra, (vae, vae_card.source), inputs.group, inputs.nir, converter
    )
    params = {
        "target": inputs.target,
        "vae": inputs.vae,
        "converter": inputs.converter,
        "folds": comparison.fold_kind,
        "downstream": job.spectra.downstream.model_dump(mode="json"),
        "preprocessing": job.spectra.mir.model_dump(mode="json"),
    }
    tracker = start_run(job.tracking, job.data.root, "spectra-evaluate", "spectra-evaluate", params)
    means = comparison.summary.assign(key=lambda s: s["model"] + "." + s["metric"])
    tracker.log_metrics(dict(zip(means["key"], means["mean"], strict=True)))
    tracker.log_text(comparison.table, "comparison.txt")
    tracker.log_text(comparison.per_fold.to_csv(index=False), "per_fold.csv")
    tracker.finish()
    return EvaluateResult(comparison, inputs.vae, inputs.converter, tracker.run_id, trained)


def library_samples(points: pd.DataFrame, library: str, fidelity: str) -> Samples:
    """The samples of one fidelity of the library that are in the points table, with the points' columns."""
    spectra = read_spectra(library, fidelity)
    prefix = f"{fidelity.lower()}_"
    joined = join_points(points, spectra, prefix, how="inner")
    meta = {"unit": spectra.unit, "fidelity": spectra.fidelity, "quantity": spectra.quantity}
    return read_samples(joined, f"{library} ({fidelity}) joined with the points", prefix, **meta)


@dataclass
class SpectraDemoReport:
    """What the demo's spectral stage produced."""

    ingest: list[IngestReport]
    vae_errors: str
    conversion_errors: str
    comparison: str
    line: str
    timings_s: dict[str, float]


def run_spectra_demo(job: SpectraJob, seed: int) -> SpectraDemoReport:
    """Spectra for the demo points -> library -> VAE -> NIR->MIR converter -> comparison against PLSR on SOC."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    points, _ = read_points(job.data.url("points"))
    root = storage.resolve(job.data.root).url
    tables = generate_demo_spectra(points, root, seed=seed, overwrite=True)
    library = library_url(job)
    reports = [ingest_table(url, library, overwrite=True) for url in (tables.mir, tables.nir)]
    timings["spectra.data"] = time.perf_counter() - start
    start = time.perf_counter()
    vae = run_vae_pretraining(library, job.spectra, job.train, job.tracking, job.data.root, job.runs)
    timings["spectra.vae"] = time.perf_counter() - start
    start = time.perf_counter()
    conversion = run_conversion(library, vae.url, job.spectra, job.train, job.tracking, job.data.root, job.runs)
    timings["spectra.conversion"] = time.perf_counter() - start
    start = time.perf_counter()
    inputs = EvaluateInputs(
        mir=library_samples(points, library, "MIR"),
        target="soc_g_kg",
        nir=library_samples(points, library, "NIR"),
        vae=vae.url,
        converter=conversion.url,
    )
    result = run_evaluate(inputs, job)
    timings["spectra.evaluate"] = time.perf_counter() - start
    return SpectraDemoReport(
        reports, vae.table, conversion.table, result.comparison.table, result.comparison.line, timings
    )


def read_table_samples(url: str, prefix: str | None, id_column: str) -> Samples:
    """The samples of a wide table file."""
    return read_samples(read_table(url), storage.resolve(url).url, prefix, id_column)
