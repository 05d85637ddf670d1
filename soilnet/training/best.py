"""The weights of each model's best K epochs, by the validation score, kept beside the run's checkpoints.

Ray Train keeps the latest full checkpoint (model, optimiser, scheduler, progress) to resume a
run; the best epochs of every model trained in the run are kept here, under
``<run>/<model>/best/``: ``epoch_NNNN.safetensors`` (model weights only) and ``index.json`` (the
kept epochs with their scores, best first). The weights are written before the index, so the
index never names a file that is not complete; a dropped epoch's file is removed after.
"""

from __future__ import annotations

import json
import logging

from torch import nn

from soilnet import storage
from soilnet.models.checkpoint import read_state_dict, save_weights
from soilnet.training.state import Progress

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"


def best_folder(run_url: str, model: str) -> str:
    """The folder of a model's best weights."""
    return storage.join(run_url, model, "best")


def _weights_file(epoch: int) -> str:
    return f"epoch_{epoch:04d}.safetensors"


def keep_if_best(module: nn.Module, progress: Progress, score: float, keep: int, folder: str, name: str) -> bool:
    """Save the weights of epoch ``progress.epoch`` if its score is among the best `keep`; update ``progress.top``."""
    epoch = progress.epoch
    ranked = sorted([t for t in progress.top if int(t[1]) != epoch] + [[score, epoch]])
    if [score, epoch] not in ranked[:keep]:
        return False
    save_weights(module, storage.join(folder, _weights_file(epoch)))
    progress.top = ranked[:keep]
    kept = [{"epoch": int(e), "score": s, "weights": _weights_file(int(e))} for s, e in progress.top]
    with storage.open_file(storage.join(folder, INDEX_FILE), "w") as handle:
        json.dump({"model": name, "epochs": kept}, handle, indent=2)
    for _, dropped in ranked[keep:]:
        storage.remove(storage.join(folder, _weights_file(int(dropped))))
    return True


def read_best(folder: str) -> tuple[dict, dict]:
    """(state dict, index entry) of the best kept epoch in a model's best folder; errors name the folder."""
    index_url = storage.join(folder, INDEX_FILE)
    if not storage.exists(index_url):
        raise FileNotFoundError(f"{folder}: no {INDEX_FILE}; did the model train for at least one epoch?")
    with storage.open_file(index_url, "r") as handle:
        index = json.load(handle)
    if not index.get("epochs"):
        raise ValueError(f"{index_url}: lists no kept epoch")
    entry = index["epochs"][0]
    log.info("%s: best epoch %d (score %.5g)", folder, entry["epoch"], entry["score"])
    return read_state_dict(storage.join(folder, entry["weights"])), entry
