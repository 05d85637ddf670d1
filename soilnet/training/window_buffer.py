"""How far pretraining windows kept from the labelled points, recorded with the encoders, and what that means
for the comparison table.

Pretraining windows are centred at least ``stream.buffer_px`` pixels from every labelled point. Below the
window size (``patch_px``) an SSL window can cover pixels of a labelled point's window, test folds
included: the encoders then saw (unlabelled) pixels of the test areas, and the rows that use them must say
so. A dense demo cannot afford a buffer of a whole window, so the table states it instead.
"""

from __future__ import annotations

import json

from soilnet import storage
from soilnet.data.stream_config import StreamConfig

FILE = "window_buffer.json"


def record_window_buffer(encoders: str, stream: StreamConfig) -> None:
    """Write the pretraining stream's buffer and window size next to the exported encoders."""
    with storage.open_file(storage.join(encoders, FILE), "w") as f:
        json.dump({"buffer_px": stream.buffer_px, "patch_px": stream.patch_px}, f)


def ssl_overlap_note(encoders: str) -> str | None:
    """The comparison table's note when the encoders' pretraining windows could overlap labelled (test) windows;
    None when the recorded buffer is at least the window size."""
    url = storage.join(encoders, FILE)
    if not storage.exists(url):
        return (
            f"note: the pretraining buffer of {encoders} is not recorded: the rows using these encoders may "
            "have seen pixels of the test areas"
        )
    with storage.open_file(url, "r") as f:
        record = json.load(f)
    buffer_px, patch_px = float(record["buffer_px"]), int(record["patch_px"])
    if buffer_px >= patch_px:
        return None
    return (
        f"note: the rows using the pretrained encoders saw test-area pixels: pretraining windows kept only "
        f"{buffer_px:g} px from labelled points, less than the {patch_px} px window (set pretrain.stream.buffer_px "
        f">= {patch_px} where the points are sparse enough)"
    )
