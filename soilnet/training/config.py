"""Configuration sections of the training jobs: Ray Train scaling, pretraining, fine-tuning, evaluation.

`OptimConfig` (optimiser and schedules) lives in `soilnet.recipes.optim` and is re-exported here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from soilnet.configbase import StrictModel
from soilnet.data.folds import FoldConfig
from soilnet.data.stream_config import StreamConfig
from soilnet.data.targets import TargetSpec, as_spec
from soilnet.evaluation.baselines import BaselineConfig
from soilnet.recipes.optim import OptimConfig


class TrainConfig(StrictModel):
    """How Ray Train runs a training job (shared by pretraining and fine-tuning)."""

    num_workers: int | tuple[int, int] = Field(
        2,
        description="Ray Train workers (one GPU each on GPU nodes), or [min, max] for elastic training: the group "
        "runs on as many workers as the cluster holds between min and max, shrinks when a node is lost and grows "
        "when one comes back (restarting from the last checkpoint); the global batch and learning-rate schedule "
        "stay those of max workers (`soilnet.training.elastic`).",
    )
    resize_check_s: float = Field(
        60.0, gt=0, description="Elastic training: seconds between checks of the cluster for a larger worker group."
    )
    use_gpu: bool = Field(False, description="One GPU per worker, DDP over NCCL; fails early if none are free.")
    cpus_per_worker: float = Field(
        0.5, gt=0, description="CPUs reserved per worker; leave CPUs for the Ray Data readers on small nodes."
    )
    use_amp: bool = Field(True, description="bf16 autocast on CUDA devices (ignored on CPU).")
    grad_accum_steps: int = Field(1, ge=1, description="Micro-batches accumulated per optimiser step.")
    max_failures: int = Field(1, ge=0, description="Worker-group restarts from the last checkpoint after a failure.")
    keep_checkpoints: int = Field(
        2,
        ge=1,
        description="Epochs whose weights are kept per model, the best by the validation metric (pretraining: the "
        "training loss); the latest full checkpoint is kept besides, to resume.",
    )
    data_source: Literal["stream", "cache"] = Field(
        "cache",
        description="stream: read every epoch's windows from the cubes (large tables); cache: read each "
        "location once into the object store and cut the epochs from memory (small labelled sets, laptop).",
    )
    cache_device: Literal["cpu", "cuda"] = Field(
        "cpu",
        description="Where each worker keeps the labelled-sample cache (data_source: cache): cpu (host memory, "
        "batches normalised by NumPy) or cuda (copied to the worker's GPU once; batches gathered, decoded and "
        "normalised there; needs use_gpu and fails clearly when the worker has no free GPU).",
    )
    threads_per_worker: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads per worker; None: its whole CPUs (cpus_per_worker, at least 1). "
        "Fixed by the config, not the node, so a run repeats to the bit.",
    )
    seed: int = Field(0, ge=0, description="Seed of model initialisation.")

    @field_validator("num_workers", mode="before")
    @classmethod
    def _worker_range(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise ValueError(f"train.num_workers: expected a count or [min, max] of two integers, got {value!r}")
            low, high = value
            if not 1 <= low <= high:
                raise ValueError(f"train.num_workers: expected [min, max] with 1 <= min <= max, got {list(value)}")
            return (low, high) if low < high else low
        if isinstance(value, int) and value < 1:
            raise ValueError(f"train.num_workers: expected at least 1 worker, got {value}")
        return value

    @property
    def min_workers(self) -> int:
        """The fewest workers the run goes on with (``num_workers`` when it is one number)."""
        return self.num_workers if isinstance(self.num_workers, int) else self.num_workers[0]

    @property
    def max_workers(self) -> int:
        """The most workers (``num_workers`` when it is one number): the size the batch and schedule are set for."""
        return self.num_workers if isinstance(self.num_workers, int) else self.num_workers[1]

    @model_validator(mode="after")
    def _device_cache_needs_gpus(self) -> TrainConfig:
        if self.cache_device == "cuda" and (self.data_source != "cache" or not self.use_gpu):
            raise ValueError(
                "train.cache_device=cuda keeps the sample cache on the workers' GPUs: it needs "
                f"train.data_source=cache (is {self.data_source!r}) and train.use_gpu=true (is {self.use_gpu})"
            )
        return self


def _stream(shuffle: Literal["global", "shard"], n_unlabelled: int) -> StreamConfig:
    return StreamConfig(shuffle=shuffle, n_unlabelled=n_unlabelled)


class PretrainConfig(StrictModel):
    """Self-supervised pretraining of a recipe's encoders on unlabelled locations."""

    recipe: str = Field(
        "jobs/configs/recipes/ssl-soilnet.yaml", description="Recipe YAML (path or URL) with an ssl section."
    )
    epochs: int = Field(10, ge=1, description="Passes over the unlabelled locations.")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="Batches per worker per epoch; None: one pass over the padded table."
    )
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimiser and schedule.")
    stream: StreamConfig = Field(
        default_factory=lambda: _stream("shard", 10_000),
        description="Unlabelled locations and sample stream (shard order: a read serves many windows).",
    )
    normalisation: Literal["minmax", "standard"] = Field("minmax", description="Image normalisation method.")
    run_name: str = Field("pretrain", min_length=1, description="Run name: checkpoints under <runs>/<run_name>.")
    output: str | None = Field(None, description="URL of the pretrained encoders; default <runs>/<run_name>/encoders.")


class CalibrationConfig(StrictModel):
    """Split-conformal intervals and the area of applicability, calibrated on the spatial folds (#17)."""

    levels: list[float] = Field(
        default_factory=lambda: [0.9],
        min_length=1,
        description="Nominal coverage of the prediction intervals (0.9: <target>_lower_90 / _upper_90 map layers).",
    )
    aoa: bool = Field(True, description="Fit the area of applicability (map layers di and aoa).")

    @field_validator("levels")
    @classmethod
    def _levels_in_range(cls, value: list[float]) -> list[float]:
        bad = [v for v in value if not 0.0 < v < 1.0]
        if bad or len(set(value)) != len(value):
            raise ValueError(f"levels must be distinct values strictly between 0 and 1, got {value}")
        return value


class FinetuneConfig(StrictModel):
    """Supervised fine-tuning with spatial K-fold cross-validation (one model per fold)."""

    recipe: str = Field("jobs/configs/recipes/soilnet.yaml", description="Recipe YAML (path or URL).")
    target: str = Field(
        "soc_g_kg",
        min_length=1,
        description="The primary target column (one-target shorthand of targets; always the name of targets[0]).",
    )
    targets: list[str | TargetSpec] = Field(
        default_factory=list,
        description="Target columns trained together by one multi-output head, each a column name or "
        "{name, kind: continuous|binary|multiclass, weight}; the first is the primary target (it names the "
        "registered model soilnet-<primary> and is ranked for promotion). Empty: [target]. Rows may miss "
        "labels of some targets when several are trained (the loss masks them).",
    )
    depths: list[tuple[float, float]] | None = Field(
        None,
        description="Depth intervals [[top_cm, bottom_cm], ...] of the points table trained as a second output "
        "axis (rows matched by depth_top_cm / depth_bottom_cm; outputs <target>_<top>_<bottom>cm with several). "
        "None: the shallowest interval of the table.",
    )
    class_weighting: Literal["balanced", "none"] = Field(
        "balanced",
        description="Categorical targets: cross-entropy class weights from each fold's training rows "
        "(balanced: n_rows / (n_classes * n_rows_of_class), as scikit-learn) or none.",
    )
    spectral_label_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Loss weight of labels predicted from spectra (source '<survey>+spectra:<model>'); lab values 1.",
    )
    pretrained: str | None = Field(
        None, description="URL of pretrained encoders (output of pretrain); None: train from scratch."
    )
    freeze_backbone: bool = Field(False, description="Freeze the image encoder (train the rest).")
    loss: Literal["mse", "huber", "l1"] = Field(
        "mse", description="Loss on standardised continuous targets (each target standardised on the fold's rows)."
    )
    huber_delta: float = Field(1.0, gt=0, description="loss=huber: transition point (standardised units).")
    epochs: int = Field(30, ge=1, description="Maximum epochs per fold.")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="Batches per worker per epoch; None: one pass over the padded training rows."
    )
    patience: int = Field(5, ge=1, description="Early stopping: epochs without validation improvement.")
    min_delta: float = Field(0.0, ge=0, description="Early stopping: smallest improvement that counts.")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimiser and schedule.")
    folds: FoldConfig = Field(default_factory=FoldConfig, description="Spatial folds and validation split.")
    only_folds: list[int] | None = Field(None, description="Train only these test folds (debugging); None: all.")
    stream: StreamConfig = Field(
        default_factory=lambda: _stream("global", 0), description="Sample stream (global shuffle of points)."
    )
    normalisation: Literal["minmax", "standard"] = Field("minmax", description="Image normalisation method.")
    run_name: str = Field("finetune", min_length=1, description="Run name: checkpoints under <runs>/<run_name>.")
    bundle: str | None = Field(None, description="URL of the model bundle; default <runs>/<run_name>/bundle.")
    calibration: CalibrationConfig = Field(
        default_factory=CalibrationConfig,
        description="Prediction intervals and area of applicability calibrated on the folds, kept in the bundle.",
    )

    @model_validator(mode="before")
    @classmethod
    def _targets_from_shorthand(cls, data: Any) -> Any:
        """``target`` alone means ``targets: [target]``; with both, target must name targets[0]."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        targets = data.get("targets") or []
        if not targets:
            data["targets"] = [data.get("target", "soc_g_kg")]
            return data
        first = targets[0]
        primary = first.get("name") if isinstance(first, dict) else getattr(first, "name", first)
        if "target" in data and data["target"] != primary:
            raise ValueError(
                f"finetune.target {data['target']!r} differs from the first of finetune.targets ({primary!r}): "
                "set one of them"
            )
        data["target"] = primary
        return data

    @model_validator(mode="after")
    def _targets_and_depths_are_distinct(self) -> FinetuneConfig:
        names = [as_spec(t).name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"finetune.targets lists a column twice: {names}")
        for top, bottom in self.depths or []:
            if not 0 <= top < bottom:
                raise ValueError(f"finetune.depths: [{top}, {bottom}] is not an interval 0 <= top < bottom (cm)")
        if self.depths is not None and len(set(self.depths)) != len(self.depths):
            raise ValueError(f"finetune.depths lists an interval twice: {self.depths}")
        if self.depths == []:
            raise ValueError("finetune.depths is empty: give at least one [top_cm, bottom_cm] or leave it unset")
        return self

    @property
    def target_specs(self) -> list[TargetSpec]:
        """The targets as `TargetSpec`s, primary first."""
        return [as_spec(t) for t in self.targets]

    @model_validator(mode="after")
    def _freeze_needs_weights(self) -> FinetuneConfig:
        if self.freeze_backbone and self.pretrained is None:
            raise ValueError("finetune.freeze_backbone needs finetune.pretrained (a frozen random encoder learns nil)")
        return self


class EvaluateConfig(StrictModel):
    """The comparison of the fine-tuned models with tree baselines on the same folds."""

    baselines: BaselineConfig = Field(default_factory=BaselineConfig, description="Centre-pixel tree baselines.")
    ssl_features: bool = Field(True, description="Also a random forest on frozen pretrained image features.")
    plots: bool = Field(True, description="Log observed-vs-predicted, residual, distribution and error-map plots.")
    digits: int = Field(3, ge=0, le=8, description="Decimals in the comparison table.")
