"""Where an experiment keeps its finished arms, so that a rerun skips them.

Layout under ``<data.runs>/<experiment.run_name>/<design>/`` (local folder or ``s3://``):

- ``experiment.json``: the MLflow parent run (id, tracking URI) every rerun logs into;
- ``arms/<arm>/seed<k>/``: ``per_fold.csv`` (the C3 per-fold frame of the arm), ``predictions.csv``
  (``id``, ``fold``, ``target``, ``prediction`` of every point, out of fold) and ``done.json``
  (run id, inputs, timings and the digest of the arm's settings), written last: an arm-seed without it,
  or whose settings changed since (another ``--quick``, epochs, recipe, ...), is run again from scratch;
- ``recipes/<arm>.yaml``: each deep arm's recipe; ``runs/``: their training runs (``data.runs``);
- ``pretrain/<key>.json``: finished pretrainings, shared by arms with the same recipe and seed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from soilnet import storage

DONE = "done.json"


@dataclass
class ArmRecord:
    """One arm-seed's results: per-fold metrics, out-of-fold predictions of every point, facts."""

    arm: str
    seed: int
    per_fold: pd.DataFrame
    predictions: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _read_json(url: str) -> dict[str, Any]:
    with storage.open_file(url, "r") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class ExperimentStore:
    """The folder of one experiment design."""

    root: str

    def arm_folder(self, arm: str, seed: int) -> str:
        """The folder of an arm-seed's results."""
        return storage.join(self.root, "arms", arm, f"seed{seed}")

    def finished(self, arm: str, seed: int, digest: str | None = None) -> bool:
        """True once an arm-seed's results were saved completely (with settings of `digest`, if given)."""
        url = storage.join(self.arm_folder(arm, seed), DONE)
        if not storage.exists(url):
            return False
        return digest is None or _read_json(url).get("digest") == digest

    def save(self, record: ArmRecord) -> None:
        """Write an arm-seed's tables, then its done marker."""
        folder = self.arm_folder(record.arm, record.seed)
        storage.makedirs(folder)
        storage.replace_text(storage.join(folder, "per_fold.csv"), record.per_fold.to_csv(index=False))
        storage.replace_text(storage.join(folder, "predictions.csv"), record.predictions.to_csv(index=False))
        storage.replace_text(storage.join(folder, DONE), json.dumps(record.info, indent=2, default=str))

    def load(self, arm: str, seed: int) -> ArmRecord:
        """An arm-seed's saved results (errors name the folder)."""
        folder = self.arm_folder(arm, seed)
        if not self.finished(arm, seed):
            raise FileNotFoundError(f"{folder}: arm {arm!r}, seed {seed} has not finished")
        tables = []
        for name in ("per_fold.csv", "predictions.csv"):
            with storage.open_file(storage.join(folder, name), "r") as handle:
                tables.append(pd.read_csv(io.StringIO(handle.read()), dtype={"id": str, "target": str}))
        per_fold, predictions = tables
        per_fold["target"] = per_fold["target"].fillna("")
        return ArmRecord(arm, seed, per_fold, predictions, _read_json(storage.join(folder, DONE)))

    def state(self) -> dict[str, Any]:
        """``experiment.json`` (the parent run), or an empty dict before the first run."""
        url = storage.join(self.root, "experiment.json")
        return _read_json(url) if storage.exists(url) else {}

    def save_state(self, state: dict[str, Any]) -> None:
        """Write ``experiment.json``."""
        storage.makedirs(self.root)
        storage.replace_text(storage.join(self.root, "experiment.json"), json.dumps(state, indent=2))

    def pretraining(self, key: str) -> dict[str, Any] | None:
        """A finished pretraining's record (encoders URL, run id), or None."""
        url = storage.join(self.root, "pretrain", f"{key}.json")
        return _read_json(url) if storage.exists(url) else None

    def save_pretraining(self, key: str, record: dict[str, Any]) -> None:
        """Record a finished pretraining."""
        storage.makedirs(storage.join(self.root, "pretrain"))
        storage.replace_text(storage.join(self.root, "pretrain", f"{key}.json"), json.dumps(record, indent=2))
