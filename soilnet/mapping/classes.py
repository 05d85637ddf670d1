"""Map layers of a categorical output (contract C1): class code, class probabilities, predictive entropy.

For a categorical output ``c`` (``permafrost``, ``taxonomy_order``) with vocabulary ``[l_0, ..., l_K-1]``
(codes are indices in it), from the fold-mean class probabilities (K, h, w) of a tile:

- ``c``: uint8 class code, the most probable class (the lowest code on a tie), 255 = nodata; its COG
  carries a colour table and its STAC item the classes (`class_colours`);
- ``c_p_<label>``: float32 probability of each class, NaN = nodata (``<label>`` with every character
  other than letters, digits, ``-`` and ``_`` replaced by ``_``);
- ``c_entropy``: float32 predictive entropy ``-sum_k p_k ln p_k`` in nats (0: one class certain,
  ln K: all equally likely), NaN = nodata.

A pixel is nodata where any probability is NaN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: Class code of a nodata pixel in a class layer.
CLASS_NODATA = 255
#: Stored value of one unit of a probability or entropy layer in its int16 COG (so 0.0001).
PROBABILITY_SCALE = 1e-4
#: Colours of up to 10 classes (matplotlib's tab10), then of up to 20 (tab20); more are spread over hues.
_TAB10 = ["1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf"]
_TAB20_LIGHT = ["aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94", "f7b6d2", "c7c7c7", "dbdb8d", "9edae5"]


def label_slug(label: str) -> str:
    """A class label as it appears in a layer name (characters other than ``[A-Za-z0-9_-]`` become ``_``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", str(label)).strip("_")
    if not slug:
        raise ValueError(f"class label {label!r} has no letter or digit to name its probability layer")
    return slug


def probability_layer(output: str, label: str) -> str:
    """The probability layer of class `label` of a categorical output: ``<output>_p_<label>``."""
    return f"{output}_p_{label_slug(label)}"


def entropy_layer(output: str) -> str:
    """The predictive entropy layer of a categorical output: ``<output>_entropy``."""
    return f"{output}_entropy"


def class_layer_names(output: str, classes: Sequence[str]) -> list[str]:
    """Layers of a categorical output: its class code, one probability per class, its entropy."""
    if not 2 <= len(classes) < CLASS_NODATA:
        raise ValueError(f"{output}: a class map needs 2 to {CLASS_NODATA - 1} classes, got {len(classes)}")
    probabilities = [probability_layer(output, label) for label in classes]
    if len(set(probabilities)) != len(probabilities):
        raise ValueError(f"{output}: class labels {list(classes)} give the same layer name twice ({probabilities})")
    return [output, *probabilities, entropy_layer(output)]


def class_layers(output: str, classes: Sequence[str], probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """The layers (`class_layer_names` order) of class probabilities (K, h, w); NaN marks nodata pixels."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] != len(classes):
        raise ValueError(f"{output}: probabilities must be ({len(classes)}, h, w) for {list(classes)}, got {p.shape}")
    nodata = np.isnan(p).any(axis=0)
    filled = np.where(nodata, 0.0, p)
    code = np.where(nodata, CLASS_NODATA, filled.argmax(axis=0)).astype(np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(filled > 0, filled * np.log(filled), 0.0).sum(axis=0)
    names = class_layer_names(output, classes)
    layers = {names[0]: code}
    for name, values in zip(names[1:-1], p, strict=True):
        layers[name] = np.where(nodata, np.nan, values).astype(np.float32)
    layers[names[-1]] = np.where(nodata, np.nan, np.maximum(entropy, 0.0)).astype(np.float32)
    return layers


def class_colours(classes: Sequence[str]) -> list[str]:
    """A distinct colour (hex ``RRGGBB``) per class, in code order."""
    n = len(classes)
    if n <= len(_TAB10):
        return _TAB10[:n]
    if n <= 2 * len(_TAB10):
        return [c for pair in zip(_TAB10, _TAB20_LIGHT, strict=True) for c in pair][:n]
    import colorsys

    rgb = [colorsys.hsv_to_rgb(k / n, 0.65, 0.85 if k % 2 else 0.65) for k in range(n)]
    return ["".join(f"{round(255 * v):02x}" for v in c) for c in rgb]


def colour_table(classes: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    """The GDAL colour table of a class layer: code -> (r, g, b, 255); nodata (255) transparent."""
    table = {k: (*(int(c[i : i + 2], 16) for i in (0, 2, 4)), 255) for k, c in enumerate(class_colours(classes))}
    return {**table, CLASS_NODATA: (0, 0, 0, 0)}
