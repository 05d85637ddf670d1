"""NIR->MIR conversion: a NIR encoder trained into the frozen MIR decoder of a pretrained VAE (Ray Train, MLflow).

Paired samples (NIR and MIR in the library) are split by id; the held-out pairs give the
conversion error per wavenumber region against their measured MIR (preprocessed as the VAE's
card says, repeats averaged), next to two references: the training mean MIR spectrum (what a
converter that learned nothing would output) and the VAE's own reconstruction of the measured MIR
(the floor that the frozen decoder allows).
"""

from __future__ import annotations

import logging

import numpy as np

from soilnet import storage
from soilnet.spectra.config import SpectraConfig
from soilnet.spectra.errors import format_region_table, region_rmse
from soilnet.spectra.export import ModelCard, SpectraSpec, load_model, prepare, save_model
from soilnet.spectra.fitting import fit_spectral_task, start_run
from soilnet.spectra.library import SpectralLibraryError, SpectralSet, read_spectra
from soilnet.spectra.preprocess import preprocess_set
from soilnet.spectra.pretrain import TrainedModel, as_tensor, split_samples
from soilnet.spectra.tasks import ConversionTask
from soilnet.tracking.config import TrackingConfig
from soilnet.training.config import TrainConfig

log = logging.getLogger(__name__)


def paired_ids(mir: SpectralSet, nir: SpectralSet) -> np.ndarray:
    """Sample ids with both MIR and NIR spectra, sorted."""
    return np.intersect1d(mir.sample_ids, nir.sample_ids)


def mean_spectra(spectra: SpectralSet, ids: np.ndarray) -> np.ndarray:
    """Repeat-averaged spectra of the given samples, in the order of `ids`."""
    found, means = spectra.select(ids).mean_by_sample()
    order = {sample: row for row, sample in enumerate(found)}
    return means[[order[sample] for sample in np.asarray(ids, dtype=str)]]


def run_conversion(
    library: str,
    vae_url: str,
    cfg: SpectraConfig,
    train: TrainConfig,
    tracking: TrackingConfig,
    workspace: str,
    runs_url: str,
    output: str | None = None,
) -> TrainedModel:
    """Train the NIR encoder on the library's paired spectra; export the converter (default <runs>/<run_name>/model)."""
    vae, vae_card = load_model(vae_url, "vae")
    mir = prepare(read_spectra(library, "MIR"), vae_card.source)
    raw_nir = read_spectra(library, "NIR")
    nir = preprocess_set(raw_nir, cfg.nir)
    paired = paired_ids(mir, nir)
    if paired.size < 4:
        raise SpectralLibraryError(f"{library}: {paired.size} samples have both NIR and MIR spectra; need at least 4")
    train_ids, holdout_ids = split_samples(paired, cfg.conversion.holdout_fraction, train.seed)
    target = mean_spectra(mir, train_ids)
    views, counts = nir.views(train_ids)
    arrays = {"views": views, "counts": counts, "mir": target, "mir_latent": vae.embed(as_tensor(target)).numpy()}
    task = ConversionTask(nir.axis.size, vae_card.vae, vae.decoder.state_dict(), mir.axis.size, cfg.conversion)
    params = {
        "conversion": cfg.conversion.model_dump(mode="json"),
        "nir_preprocessing": cfg.nir.model_dump(mode="json"),
        "vae": vae_url,
        "library": library,
        "n_train_pairs": len(train_ids),
        "n_holdout_pairs": len(holdout_ids),
    }
    run_name = cfg.conversion.run_name
    tracker = start_run(tracking, workspace, run_name, "spectra-convert", params)
    state, entry = fit_spectral_task(
        task,
        arrays,
        cfg.conversion.epochs,
        cfg.conversion.steps_per_epoch,
        cfg.conversion.batch_size,
        cfg.conversion.optim,
        train,
        runs_url,
        run_name,
        tracker,
        {"kind": "spectra-convert", "config": cfg.conversion.model_dump(mode="json")},
    )
    module = task.build()
    module.load_state_dict(state)
    module.eval()
    measured = mean_spectra(mir, holdout_ids)
    converted = module.convert(as_tensor(mean_spectra(nir, holdout_ids))).numpy()
    errors = {
        "converted NIR": region_rmse(converted, measured, mir.axis, cfg.regions),
        "training mean MIR": region_rmse(
            np.broadcast_to(target.mean(axis=0), measured.shape), measured, mir.axis, cfg.regions
        ),
        "VAE reconstruction of MIR": region_rmse(
            vae.reconstruct(as_tensor(measured)).numpy(), measured, mir.axis, cfg.regions
        ),
    }
    table = format_region_table(errors, cfg.regions)
    log.info("held-out conversion RMSE per region (%d pairs):\n%s", len(holdout_ids), table)
    metrics = {f"holdout_conversion_rmse_{k}": v for k, v in errors["converted NIR"].items()}
    metrics.update({f"holdout_mean_mir_rmse_{k}": v for k, v in errors["training mean MIR"].items()})
    source = SpectraSpec(fidelity="NIR", unit=raw_nir.unit, preprocessing=cfg.nir, axis=nir.axis.tolist())
    card = ModelCard(
        kind="converter",
        vae=vae_card.vae,
        source=source,
        target=vae_card.source,
        metrics=metrics,
        mlflow_run_id=tracker.run_id,
    )
    url = output or storage.join(runs_url, run_name, "model")
    save_model(url, module, card)
    tracker.log_metrics(metrics)
    tracker.log_text(table, "conversion_error.txt")
    tracker.log_folder(url, "model")
    tracker.set_tags({"soilnet.spectral_model": url, "soilnet.best_epoch": entry["epoch"]})
    tracker.finish()
    return TrainedModel(url, tracker.run_id, errors, table)
