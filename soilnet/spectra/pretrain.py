"""Pretraining the spectral VAE on the library's unlabelled MIR spectra (Ray Train, MLflow).

Samples are split by id: a held-out share never reaches training and gives the reconstruction
error per wavenumber region, next to the error of predicting the training mean spectrum. The best
epoch's VAE is exported with its card (architecture, preprocessing chain, axis, held-out errors).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from soilnet import storage
from soilnet.spectra.config import SpectraConfig
from soilnet.spectra.errors import format_region_table, region_rmse
from soilnet.spectra.export import ModelCard, SpectraSpec, save_model
from soilnet.spectra.fitting import fit_spectral_task, start_run
from soilnet.spectra.library import SpectralSet, read_spectra
from soilnet.spectra.preprocess import preprocess_set
from soilnet.spectra.tasks import SpectralVAETask
from soilnet.spectra.vae import SpectralVAE
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """An exported spectral model (VAE or converter), its MLflow run, its held-out errors per region and predictor."""

    url: str
    run_id: str
    errors: dict[str, dict[str, float]]
    table: str


def split_samples(ids: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training ids, held-out ids): a seeded share `fraction` of the samples held out (at least one each)."""
    ids = np.asarray(ids, dtype=str)
    if ids.size < 2:
        raise ValueError(f"a held-out split needs at least 2 samples, got {ids.size}")
    n_out = min(max(1, round(fraction * ids.size)), ids.size - 1)
    chosen = np.random.default_rng(seed).permutation(ids.size)
    return np.sort(ids[chosen[n_out:]]), np.sort(ids[chosen[:n_out]])


def as_tensor(values: np.ndarray) -> torch.Tensor:
    """A float32 CPU tensor of an array."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def heldout_errors(
    module: SpectralVAE, mir: SpectralSet, train_ids: np.ndarray, holdout_ids: np.ndarray, cfg: SpectraConfig
) -> dict[str, dict[str, float]]:
    """Region RMSE of the VAE's reconstruction of held-out mean spectra, and of the training mean spectrum."""
    _, held = mir.select(holdout_ids).mean_by_sample()
    _, seen = mir.select(train_ids).mean_by_sample()
    recon = module.reconstruct(as_tensor(held)).numpy()
    mean = np.broadcast_to(seen.mean(axis=0), held.shape)
    return {
        "vae reconstruction": region_rmse(recon, held, mir.axis, cfg.regions),
        "training mean spectrum": region_rmse(mean, held, mir.axis, cfg.regions),
    }


def run_vae_pretraining(
    library: str,
    cfg: SpectraConfig,
    train: TrainConfig,
    tracking: TrackingConfig,
    workspace: str,
    runs_url: str,
    output: str | None = None,
) -> TrainedModel:
    """Pretrain the VAE on the library's MIR spectra; export it to `output` (default <runs>/<run_name>/model)."""
    raw = read_spectra(library, "MIR")
    mir = preprocess_set(raw, cfg.mir)
    train_ids, holdout_ids = split_samples(mir.sample_ids, cfg.vae.holdout_fraction, train.seed)
    views, counts = mir.views(train_ids)
    task = SpectralVAETask(mir.axis.size, cfg.vae)
    params = {
        "vae": cfg.vae.model_dump(mode="json"),
        "preprocessing": cfg.mir.model_dump(mode="json"),
        "library": library,
        "n_train_samples": len(train_ids),
        "n_train_scans": int(counts.sum()),
        "n_holdout_samples": len(holdout_ids),
        "spectral_points": mir.axis.size,
    }
    tracker = start_run(tracking, workspace, cfg.vae.run_name, "spectra-vae", params)
    state, entry = fit_spectral_task(
        task,
        {"views": views, "counts": counts},
        cfg.vae.epochs,
        cfg.vae.steps_per_epoch,
        cfg.vae.batch_size,
        cfg.vae.optim,
        train,
        runs_url,
        cfg.vae.run_name,
        tracker,
        {"kind": "spectra-vae", "config": cfg.vae.model_dump(mode="json")},
    )
    module = task.build()
    module.load_state_dict(state)
    module.eval()
    errors = heldout_errors(module, mir, train_ids, holdout_ids, cfg)
    table = format_region_table(errors, cfg.regions)
    log.info("held-out reconstruction RMSE per region (%d samples):\n%s", len(holdout_ids), table)
    metrics = {f"holdout_recon_rmse_{k}": v for k, v in errors["vae reconstruction"].items()}
    metrics.update({f"holdout_mean_spectrum_rmse_{k}": v for k, v in errors["training mean spectrum"].items()})
    source = SpectraSpec(fidelity="MIR", unit=raw.unit, preprocessing=cfg.mir, axis=mir.axis.tolist())
    card = ModelCard(kind="vae", vae=cfg.vae, source=source, metrics=metrics, mlflow_run_id=tracker.run_id)
    url = output or storage.join(runs_url, cfg.vae.run_name, "model")
    save_model(url, module, card)
    tracker.log_metrics(metrics)
    tracker.log_text(table, "reconstruction_error.txt")
    tracker.log_folder(url, "model")
    tracker.set_tags({"soilnet.spectral_model": url, "soilnet.best_epoch": entry["epoch"]})
    tracker.finish()
    return TrainedModel(url, tracker.run_id, errors, table)
