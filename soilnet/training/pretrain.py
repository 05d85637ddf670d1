"""Self-supervised pretraining on unlabelled locations, on Ray Train, tracked in MLflow.

Unlabelled locations are drawn away from every labelled point, normalisation statistics are
fitted on them (no label, no test row), and the recipe's SSL objective trains its encoders. The
encoders of the best epoch are exported with the statistics to ``<output>`` for fine-tuning:
``image_encoder.safetensors``, ``climate_encoder.safetensors``, ``normalisation.json``, ``recipe.yaml``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import yaml

from soilnet import storage
from soilnet.data.folds import FoldConfig
from soilnet.data.normalisation import NormStats, save_stats
from soilnet.data.sampling import steps_per_epoch
from soilnet.data.workspace import DataConfig
from soilnet.models.checkpoint import save_weights
from soilnet.tracking.config import TrackingConfig
from soilnet.training.best import best_folder, read_best
from soilnet.training.config import PretrainConfig, TrainConfig
from soilnet.training.job import TrainingJob, input_stats, labelled_table, unlabelled_table
from soilnet.training.loop import ModelSpec, StepCallback
from soilnet.training.tasks import CLIMATE_ENCODER_FILE, IMAGE_ENCODER_FILE, SSLTask
from soilnet.training.window_buffer import record_window_buffer

log = logging.getLogger(__name__)

#: The name of the pretraining model in the run's storage (its best weights: ``<run>/ssl/best``).
MODEL_NAME = "ssl"


@dataclass
class PretrainResult:
    """What pretraining produced."""

    run_id: str
    encoders: str
    stats: NormStats
    metrics: dict[str, float]
    best_weights: str


def export_encoders(task: SSLTask, state: dict, stats: NormStats, url: str) -> str:
    """Write the encoders of the SSL objective's state dict, the statistics and the recipe under `url`."""
    objective = task.build()
    objective.load_state_dict(state)
    storage.makedirs(url)
    save_weights(objective.image_encoder, storage.join(url, IMAGE_ENCODER_FILE))
    if getattr(objective, "climate_encoder", None) is not None:
        save_weights(objective.climate_encoder, storage.join(url, CLIMATE_ENCODER_FILE))
    save_stats(stats, storage.join(url, "normalisation.json"))
    with storage.open_file(storage.join(url, "recipe.yaml"), "w") as f:
        yaml.safe_dump(task.recipe.model_dump(mode="json"), f, sort_keys=False)
    return url


def run_pretrain(
    data: DataConfig,
    train: TrainConfig,
    cfg: PretrainConfig,
    tracking: TrackingConfig,
    target: str = "soc_g_kg",
    resume_from: str | None = None,
    on_step: StepCallback | None = None,
) -> PretrainResult:
    """Pretrain the recipe's encoders; resumes the checkpoint (and MLflow run) of `resume_from` if given."""
    job = TrainingJob.prepare(data, train, tracking, cfg.run_name, cfg.recipe, cfg.stream, resume_from)
    stream = job.stream
    task = SSLTask(job.recipe)
    labelled = labelled_table(data, target, FoldConfig(k=2))
    unlabelled = unlabelled_table(job.cubes, stream, labelled)
    source = job.source(unlabelled)
    stats = input_stats(source, unlabelled, job.cubes, cfg.normalisation, stream.seed)
    tracker = job.start_run("pretrain", cfg, {"n_unlabelled": len(unlabelled)})
    batches, datasets = source.batches(unlabelled, range(cfg.epochs), train.max_workers, stats, MODEL_NAME)
    model = ModelSpec(
        name=MODEL_NAME,
        batches=batches,
        stats=stats,
        steps_per_epoch=cfg.steps_per_epoch or steps_per_epoch(len(unlabelled), train.max_workers, stream.batch_size),
        seed=train.seed,
        tracker=tracker,
        job=job.record("pretrain", cfg, tracker),
    )
    optim = cfg.optim.over(job.recipe.pretrain_optim)  # the recipe's reference schedule, where the job sets none
    spec = job.worker_spec(task, optim, [model], cfg.epochs, on_step)
    with job.failing([tracker]):
        result = job.fit(spec, datasets)
    run_url = job.run_url
    best = best_folder(run_url, MODEL_NAME)
    state, entry = read_best(best)
    output = cfg.output or storage.join(run_url, "encoders")
    export_encoders(task, state, stats, output)
    record_window_buffer(output, stream)  # the comparison table says if SSL windows could cover test areas
    tracker.log_folder(output, "encoders")
    tracker.log_text(stats.model_dump_json(indent=2), "normalisation.json")
    tracker.set_tags(
        {"soilnet.encoders_url": output, "soilnet.best_weights": best, "soilnet.best_epoch": entry["epoch"]}
    )
    tracker.finish()
    log.info("pretrained encoders written to %s", output)
    return PretrainResult(tracker.run_id, output, stats, dict(result.metrics or {}), best)
